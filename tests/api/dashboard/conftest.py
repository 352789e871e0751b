"""The dashboard tests' clients: a signed-in browser on the app in process, and the live API and
the real browser for the browser tests (see live.py)."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import expect

from tests.api.conftest import ADMIN_KEY
from tests.api.dashboard.helpers import sign_in
from tests.api.dashboard.live import chromium, live_api, open_page

# Two CPUs shared with other test runs: an assertion waits as long as a page action may.
expect.set_options(timeout=20_000)

__all__ = ["chromium", "live_api", "open_page"]


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Signed in with the operator key, as a browser is after the login form."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        await sign_in(client, ADMIN_KEY)
        yield client
