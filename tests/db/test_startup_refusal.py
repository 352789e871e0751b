"""The API and the worker refuse to start against PostgreSQL as a superuser (unless
ALLOW_SUPERUSER_DB), start normally as the application login, and start when the database is
down - in which case the guard checks the first connection that does open."""

import httpx
import pytest
from forgestack_api.main import create_app
from forgestack_db.guard import UnsafeDatabaseRoleError
from forgestack_shared.settings import Settings, get_settings
from forgestack_worker.resources import close_resources, open_resources

from tests.conftest import free_port
from tests.fixtures_db import PgTestDatabase


def _use(monkeypatch: pytest.MonkeyPatch, url: str, *, allow: bool = False) -> Settings:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ALLOW_SUPERUSER_DB", "true" if allow else "false")
    get_settings.cache_clear()
    return get_settings()


async def test_the_worker_refuses_a_superuser(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, pg_database: PgTestDatabase
) -> None:
    with pytest.raises(UnsafeDatabaseRoleError, match="superuser"):
        await open_resources(_use(monkeypatch, pg_database.superuser_url))


async def test_the_worker_starts_as_the_application_login_or_when_allowed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, pg_database: PgTestDatabase
) -> None:
    for url, allow in ((pg_database.app_url, False), (pg_database.superuser_url, True)):
        res = await open_resources(_use(monkeypatch, url, allow=allow))
        await close_resources(res)


async def test_the_api_refuses_a_superuser(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, pg_database: PgTestDatabase
) -> None:
    _use(monkeypatch, pg_database.superuser_url)
    app = create_app()
    with pytest.raises(UnsafeDatabaseRoleError, match="superuser"):
        async with app.router.lifespan_context(app):
            pass


async def test_the_api_starts_as_the_application_login(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, pg_database: PgTestDatabase
) -> None:
    _use(monkeypatch, pg_database.app_url)
    app = create_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            assert (await client.get("/readyz")).status_code == 200


async def test_a_database_down_at_startup_does_not_stop_the_worker(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = await open_resources(
        _use(monkeypatch, f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    )
    await close_resources(res)
