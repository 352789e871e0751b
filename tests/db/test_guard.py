"""The startup guard: a login that would read around row-level security (superuser, BYPASSRLS,
table owner, or a member of one) is refused unless ALLOW_SUPERUSER_DB is set; so is a schema whose
tenant tables lack forced RLS. The check runs on every new connection, not only at startup."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from forgestack_db.database import Database
from forgestack_db.engine import create_engine
from forgestack_db.guard import UnsafeDatabaseRoleError, check_app_role
from forgestack_db.migrate import upgrade_async

from tests.fixtures_db import PgTestDatabase


@dataclass(frozen=True)
class Flags:
    allow_superuser_db: bool = False


async def _check(url: str, flags: Flags = Flags()) -> object:
    db = Database.from_url(url, pool_size=1)
    try:
        return await check_app_role(db.engine, flags)
    finally:
        await db.dispose()


async def test_the_application_login_passes(pg_database: PgTestDatabase) -> None:
    report = await _check(pg_database.app_url)
    assert report is not None
    assert report.user == pg_database.login  # type: ignore[attr-defined]
    assert report.problems == []  # type: ignore[attr-defined]


async def test_a_superuser_is_refused(pg_database: PgTestDatabase) -> None:
    with pytest.raises(UnsafeDatabaseRoleError, match="superuser/BYPASSRLS"):
        await _check(pg_database.superuser_url)


async def test_a_superuser_is_allowed_only_when_the_setting_says_so(
    pg_database: PgTestDatabase,
) -> None:
    report = await _check(pg_database.superuser_url, Flags(allow_superuser_db=True))
    assert report is not None and report.problems  # type: ignore[attr-defined]


async def test_the_table_owner_is_refused(pg_database: PgTestDatabase) -> None:
    with pytest.raises(UnsafeDatabaseRoleError, match="owns or can become owner of"):
        await _check(pg_database.owner_url)


@pytest.fixture
async def owner_member_url(pg_database: PgTestDatabase) -> AsyncIterator[str]:
    """A login that is not the owner but may SET ROLE to it: as dangerous as the owner."""
    name = f"{pg_database.name}_om{uuid.uuid4().hex[:4]}"
    admin = create_engine(pg_database.superuser_url, pool_size=1)
    try:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f"CREATE ROLE {name} LOGIN IN ROLE {pg_database.owner}"))
        yield (
            sa.make_url(pg_database.app_url)
            .set(username=name, password=None)
            .render_as_string(hide_password=False)
        )
    finally:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f"DROP ROLE IF EXISTS {name}"))
        await admin.dispose()


async def test_a_member_of_the_owner_role_is_refused(owner_member_url: str) -> None:
    with pytest.raises(UnsafeDatabaseRoleError, match="owns or can become owner of"):
        await _check(owner_member_url)


async def test_tables_without_forced_rls_are_refused(scratch_pg: PgTestDatabase) -> None:
    await upgrade_async(scratch_pg.owner_url, app_role=scratch_pg.app_role)
    owner = create_engine(scratch_pg.owner_url, pool_size=1)
    try:
        async with owner.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE api_keys NO FORCE ROW LEVEL SECURITY"))
    finally:
        await owner.dispose()
    with pytest.raises(
        UnsafeDatabaseRoleError, match="without forced row-level security: api_keys"
    ):
        await _check(scratch_pg.app_url)


async def test_every_new_connection_is_checked(pg_database: PgTestDatabase) -> None:
    db = Database.from_url(pg_database.superuser_url, pool_size=1)
    try:
        with pytest.raises(UnsafeDatabaseRoleError):
            await check_app_role(db.engine, Flags())
        # Whatever code runs later, no query gets a connection as this login.
        with pytest.raises(UnsafeDatabaseRoleError):
            async with db.service_context("test: after refusal"):
                pass
    finally:
        await db.dispose()


async def test_sqlite_has_no_roles_to_check(sqlite_db: Database) -> None:
    assert await check_app_role(sqlite_db.engine, Flags()) is None
