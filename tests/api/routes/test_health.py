"""Liveness and readiness against real Redis, SQLite and PostgreSQL, and with each one down."""

import shutil
import tempfile
from pathlib import Path

import httpx
import pytest
from forgestack_api.main import create_app
from forgestack_shared.settings import Settings, get_settings

from tests.conftest import free_port, start_redis_server
from tests.fixtures_db import PgTestDatabase


async def _get(path: str) -> httpx.Response:
    """A fresh app for settings changed inside the test."""
    app = create_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            return await client.get(path)


async def test_healthz_needs_no_key(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_with_redis_and_sqlite(anon: httpx.AsyncClient, settings: Settings) -> None:
    response = await anon.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": {"redis": "ok", "database": "ok"}}
    assert (settings.forgestack_data_dir / "forgestack.db").exists()


async def test_readyz_with_postgresql(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, pg_database: PgTestDatabase
) -> None:
    # The application login: the startup guard refuses a superuser such as `postgres`.
    monkeypatch.setenv("DATABASE_URL", pg_database.app_url)
    get_settings.cache_clear()
    response = await _get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["database"] == "ok"


async def test_readyz_names_an_unreachable_database(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cret-db-password"
    url = f"postgresql+asyncpg://postgres:{secret}@127.0.0.1:{free_port()}/test"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    response = await _get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["database"]
    assert body["checks"]["redis"] == "ok"
    assert body["checks"]["database"].startswith("failed: ")
    assert secret not in response.text


async def test_readyz_and_enqueue_when_redis_goes_down(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis of our own, stopped while the app runs: readiness and enqueue answer 503."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="fs-api-redis-"))
    server = start_redis_server(port, workdir)
    try:
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
        get_settings.cache_clear()
        app = create_app()
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": "Bearer test-admin-key"}
            async with httpx.AsyncClient(
                transport=transport, base_url="http://api.test", headers=headers
            ) as client:
                assert (await client.get("/readyz")).status_code == 200
                server.terminate()
                server.wait(timeout=10)

                ready = await client.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["failing"] == ["redis"]

                enqueue = await client.post(
                    "/api/v1/queues/my-new-job/jobs",
                    json={"data": {"user_id": "u1", "action": "greet"}},
                )
                assert enqueue.status_code == 503
                assert enqueue.json()["dependency"] == "redis"
                assert "Redis" in enqueue.json()["detail"]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        shutil.rmtree(workdir, ignore_errors=True)


async def test_openapi_docs_are_served(anon: httpx.AsyncClient) -> None:
    docs = await anon.get("/docs")
    assert docs.status_code == 200
    spec = (await anon.get("/openapi.json")).json()
    assert "/api/v1/queues/{queue}/jobs" in spec["paths"]
    assert "/api/v1/queues/my-new-job/jobs:bulk" in spec["paths"]
    assert "/api/v1/jobs/{job_id}" in spec["paths"]
