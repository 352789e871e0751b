"""The API's lean key door on PostgreSQL (asyncpg, no SQLAlchemy): as the application login under
row-level security it finds exactly the unrevoked key with that hash, records its use at most once
a minute, and refuses to run on a login the role guard refuses, on every connection it opens."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import sqlalchemy as sa
from forgestack_db.api_keys import hash_key, revoke_api_key
from forgestack_db.database import Database
from forgestack_db.key_roles import ApiKeyRole
from forgestack_db.lean_keys import PostgresKeyLookup, lean_dsn
from forgestack_db.models import ApiKey
from forgestack_db.role_report import UnsafeDatabaseRoleError

from tests.fixtures_db import OrgKeys, PgTestDatabase, make_org_keys

REASON = "api key authentication"


@dataclass(frozen=True)
class Flags:
    allow_superuser_db: bool = False


def _dsn(url: str) -> str:
    dsn = lean_dsn(url)
    assert dsn is not None
    return dsn


@pytest.fixture
async def lookup(pg_database: PgTestDatabase) -> AsyncIterator[PostgresKeyLookup]:
    lean = PostgresKeyLookup(_dsn(pg_database.app_url), Flags())
    report = await lean.open()
    assert report is not None and report.user == pg_database.login
    try:
        yield lean
    finally:
        await lean.close()


async def _last_used(db: Database, key_id: uuid.UUID) -> datetime | None:
    async with db.service_context("test: read last_used_at") as session:
        key = await session.get(ApiKey, key_id)
        assert key is not None
        return key.last_used_at


async def test_finds_the_key_with_its_organisation_and_role(
    lookup: PostgresKeyLookup, app_db: Database
) -> None:
    keys: OrgKeys = await make_org_keys(app_db)
    other = await make_org_keys(app_db)
    found = await lookup.find_active(hash_key(keys.admin), REASON)
    assert found is not None
    assert (found.org_id, found.role) == (keys.org_id, ApiKeyRole.ADMIN)
    assert found.org_id != other.org_id
    assert await lookup.find_active(hash_key("fsk_00000000_" + "x" * 43), REASON) is None


async def test_a_revoked_key_is_not_found(lookup: PostgresKeyLookup, app_db: Database) -> None:
    keys = await make_org_keys(app_db)
    found = await lookup.find_active(hash_key(keys.member), REASON)
    assert found is not None
    async with app_db.tenant_context(keys.org_id, role=ApiKeyRole.ADMIN) as session:
        assert await revoke_api_key(session, found.id) is not None
    assert await lookup.find_active(hash_key(keys.member), REASON) is None


async def test_use_is_recorded_at_most_once_a_minute(
    lookup: PostgresKeyLookup, app_db: Database
) -> None:
    keys = await make_org_keys(app_db)
    found = await lookup.find_active(hash_key(keys.owner), REASON)
    assert found is not None
    first = await _last_used(app_db, found.id)
    assert first is not None and datetime.now(UTC) - first < timedelta(seconds=30)
    await lookup.find_active(hash_key(keys.owner), REASON)
    assert await _last_used(app_db, found.id) == first
    stale = first - timedelta(minutes=2)
    async with app_db.service_context("test: age last_used_at") as session:
        await session.exec(
            sa.update(ApiKey).where(ApiKey.id == found.id).values(last_used_at=stale)
        )  # type: ignore[call-overload, arg-type]
    await lookup.find_active(hash_key(keys.owner), REASON)
    refreshed = await _last_used(app_db, found.id)
    assert refreshed is not None and refreshed > first


async def test_without_the_service_context_row_level_security_hides_the_key(
    lookup: PostgresKeyLookup, app_db: Database, pg_database: PgTestDatabase
) -> None:
    """What the lookup's `set_config` is for: the same read without it finds nothing."""
    keys = await make_org_keys(app_db)
    conn = await asyncpg.connect(_dsn(pg_database.app_url))
    try:
        hidden = await conn.fetchval(
            "SELECT count(*) FROM api_keys WHERE key_hash = $1", hash_key(keys.member)
        )
    finally:
        await conn.close()
    assert hidden == 0
    assert await lookup.find_active(hash_key(keys.member), REASON) is not None


async def test_a_superuser_login_is_refused_at_open(pg_database: PgTestDatabase) -> None:
    lean = PostgresKeyLookup(_dsn(pg_database.superuser_url), Flags())
    try:
        with pytest.raises(UnsafeDatabaseRoleError, match="superuser/BYPASSRLS"):
            await lean.open()
    finally:
        await lean.close()


async def test_every_new_connection_is_checked_not_only_the_first(
    lookup: PostgresKeyLookup, pg_database: PgTestDatabase
) -> None:
    """A login that becomes unsafe after start-up is refused on the next connection it opens."""
    admin = await asyncpg.connect(_dsn(pg_database.superuser_url))
    try:
        await admin.execute(f"ALTER ROLE {pg_database.login} BYPASSRLS")
        # The connection checked at open is in the pool; holding it makes the pool open another.
        async with lookup._connection():
            with pytest.raises(UnsafeDatabaseRoleError, match="superuser/BYPASSRLS"):
                async with lookup._connection():
                    pass
    finally:
        await admin.execute(f"ALTER ROLE {pg_database.login} NOBYPASSRLS")
        await admin.close()


async def test_a_connection_the_server_closed_since_is_replaced_not_an_error(
    lookup: PostgresKeyLookup, app_db: Database, pg_database: PgTestDatabase
) -> None:
    """After a database restart the pooled connection is dead; the next lookup still answers.
    asyncpg's pool drops a connection whose termination it has already read; one it has not yet
    read fails on use, and the lookup runs again on a new one (in the full suite both happen)."""
    keys = await make_org_keys(app_db)
    assert await lookup.find_active(hash_key(keys.member), REASON) is not None
    admin = await asyncpg.connect(_dsn(pg_database.superuser_url))
    try:
        ended = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1",
            pg_database.login,
        )
        # pg_terminate_backend only signals: wait until the backends are gone, so the lookup
        # below meets a dead connection, not one still half way through its exit.
        for _ in range(200):
            left = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", pg_database.login
            )
            if not left:
                break
            await asyncio.sleep(0.01)
    finally:
        await admin.close()
    assert ended >= 1
    assert await lookup.find_active(hash_key(keys.member), REASON) is not None
    await lookup.ping()


def test_urls_with_driver_options_or_other_drivers_keep_the_engine() -> None:
    assert lean_dsn("postgresql+asyncpg://u:p@h:5432/d") == "postgresql://u:p@h:5432/d"
    assert lean_dsn("postgresql+asyncpg://u:p@h/d?ssl=require") is None
    assert lean_dsn("sqlite+aiosqlite:///data/dev.db") is None
