"""Organisation keys are cached per API process for API_KEY_CACHE_TTL_S: a verified key costs no
database lookup until then, concurrent requests with an expired one share a lookup, and revocation
holds within the bound: at once on the process that revoked it, within the TTL everywhere else."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from forgestack_api.api_keys import SERVICE_REASON, ApiKeyAuthenticator
from forgestack_api.key_lookup import EngineKeyLookup, KeyLookup, LeanKeyLookup
from forgestack_api.lazy_database import LazyDatabase
from forgestack_api.main import create_app
from forgestack_db.api_keys import revoke_api_key
from forgestack_db.database import Database
from forgestack_db.lean_keys import PostgresKeyLookup, lean_dsn
from forgestack_shared.settings import Settings, get_settings
from loguru import logger

from tests.api.test_api_keys import as_key
from tests.fixtures_db import PgTestDatabase, make_org_keys

LOOKUP_LINE = f"service context opened: {SERVICE_REASON}"


ApiProcess = Callable[[float], AbstractAsyncContextManager[FastAPI]]
"""Starts one API process's app (its own key cache) with this key cache TTL in seconds."""


@pytest.fixture
def api(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, pg_database: PgTestDatabase
) -> ApiProcess:
    """API processes on PostgreSQL as the application login."""

    @asynccontextmanager
    async def start(ttl_s: float) -> AsyncIterator[FastAPI]:
        monkeypatch.setenv("DATABASE_URL", pg_database.app_url)
        monkeypatch.setenv("API_KEY_CACHE_TTL_S", str(ttl_s))
        get_settings.cache_clear()
        app = create_app()
        async with app.router.lifespan_context(app):
            yield app

    return start


@asynccontextmanager
async def lookups() -> AsyncIterator[Callable[[], int]]:
    """Counts the key lookups that reach the database (each opens one service context)."""
    seen: list[str] = []
    sink = logger.add(
        lambda message: seen.append(message.record["message"]),
        level="INFO",
        filter=lambda record: record["message"] == LOOKUP_LINE,
    )
    try:
        yield lambda: len(seen)
    finally:
        logger.remove(sink)


async def status_of(app: FastAPI, key: str) -> int:
    async with as_key(app, key) as client:
        return (await client.get("/api/v1/queues")).status_code


async def until_refused(app: FastAPI, key: str, within_s: float) -> float:
    """Seconds until the key is 401; fails if it still works `within_s` after the call."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if await status_of(app, key) == 401:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"the key still worked {within_s} s after its revocation")


async def temp_key(app: FastAPI, owner_key: str) -> dict[str, Any]:
    """A new key of the owner's organisation (its id and secret), made through the API."""
    async with as_key(app, owner_key) as owner:
        created: dict[str, Any] = (
            await owner.post("/api/v1/api-keys", json={"name": "temp"})
        ).json()
    return created


async def revoke_in_database(db: Database, key_id: str) -> None:
    """What `forgestack api-keys revoke` and the idle-key cron do: no API process is told."""
    async with db.service_context("test: revoke as the CLI does") as session:
        assert await revoke_api_key(session, uuid.UUID(key_id)) is not None


async def test_a_verified_key_skips_the_database_and_concurrent_requests_share_one_lookup(
    api: ApiProcess, app_db: Database
) -> None:
    keys = await make_org_keys(app_db)
    async with api(60) as app, lookups() as count:
        statuses = await asyncio.gather(*(status_of(app, keys.member) for _ in range(20)))
        assert statuses == [200] * 20
        assert count() == 1
        for _ in range(5):
            assert await status_of(app, keys.member) == 200
        assert count() == 1
        assert await status_of(app, keys.owner) == 200
        assert count() == 2


async def test_with_a_ttl_of_zero_every_request_asks_the_database(
    api: ApiProcess, app_db: Database
) -> None:
    keys = await make_org_keys(app_db)
    async with api(0) as app, lookups() as count:
        created = await temp_key(app, keys.owner)
        before = count()
        for _ in range(3):
            assert await status_of(app, created["key"]) == 200
        assert count() == before + 3
        await revoke_in_database(app_db, created["id"])
        assert await status_of(app, created["key"]) == 401


async def test_a_revocation_is_at_once_where_it_was_made_and_within_the_ttl_on_another_process(
    api: ApiProcess, app_db: Database
) -> None:
    ttl_s = 1.0
    keys = await make_org_keys(app_db)
    async with (
        api(ttl_s) as here,
        api(ttl_s) as elsewhere,
    ):
        created = await temp_key(here, keys.owner)
        temp = created["key"]
        assert await status_of(here, temp) == 200
        assert await status_of(elsewhere, temp) == 200
        async with as_key(here, keys.owner) as owner:
            assert (await owner.delete(f"/api/v1/api-keys/{created['id']}")).status_code == 204
        assert await status_of(here, temp) == 401
        await until_refused(elsewhere, temp, within_s=ttl_s + 0.5)


async def test_a_key_revoked_in_the_database_stops_working_within_the_ttl(
    api: ApiProcess, app_db: Database
) -> None:
    ttl_s = 1.0
    keys = await make_org_keys(app_db)
    async with api(ttl_s) as app:
        created = await temp_key(app, keys.owner)
        assert await status_of(app, created["key"]) == 200
        await revoke_in_database(app_db, created["id"])
        await until_refused(app, created["key"], within_s=ttl_s + 0.5)
        assert await status_of(app, keys.owner) == 200


@pytest.fixture(params=["lean", "engine"])
async def key_lookup(
    request: pytest.FixtureRequest,
    settings: Settings,
    pg_database: PgTestDatabase,
    app_db: Database,
) -> AsyncIterator[KeyLookup]:
    """Both doors a key lookup can take on PostgreSQL: asyncpg alone, or the engine."""
    if request.param == "engine":
        yield EngineKeyLookup(LazyDatabase(pg_database.app_url, settings, app_db))
        return
    dsn = lean_dsn(pg_database.app_url)
    assert dsn is not None
    lean = PostgresKeyLookup(dsn, settings)
    await lean.open()
    try:
        yield LeanKeyLookup(lean)
    finally:
        await lean.close()


async def test_a_lookup_that_began_before_a_revocation_is_not_cached(
    app_db: Database, key_lookup: KeyLookup
) -> None:
    keys = await make_org_keys(app_db)
    authenticate = ApiKeyAuthenticator(key_lookup, outage_grace_s=300, cache_ttl_s=60)
    first = await authenticate(keys.member)
    assert first is not None and first.key_id is not None
    authenticate.forget(first.key_id)
    in_flight = asyncio.ensure_future(authenticate(keys.member))
    await asyncio.sleep(0)  # the request's lookup has begun
    authenticate.forget(first.key_id)
    assert await in_flight == first
    await revoke_in_database(app_db, first.key_id)
    assert await authenticate(keys.member) is None
