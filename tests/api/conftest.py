"""An app with its lifespan run (real Redis, SQLite in the test's data dir) and HTTP clients."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from forgestack_api.main import create_app
from forgestack_shared.settings import Settings

ADMIN_KEY = "test-admin-key"


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app()
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """No credentials: for the unauthenticated probes and the 401 checks."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


@asynccontextmanager
async def operator_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` with the operator key from the `settings` fixture: for tests that build
    their own app (other settings) as well as the `client` fixture."""
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api.test", headers=headers
    ) as client:
        yield client


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Authenticated with the operator key from the `settings` fixture."""
    async with operator_client(app) as client:
        yield client
