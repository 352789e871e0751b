"""Provisioning the application login: it can log in with the password it was given (whatever
characters that holds), gets the application role's access and nothing more, and re-running the
provisioning resets the password instead of failing."""

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from forgestack_db.engine import create_engine
from forgestack_db.guard import check_app_role
from forgestack_db.roles import create_app_login
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fixtures_db import PgTestDatabase


@pytest.fixture
async def owner_engine(pg_database: PgTestDatabase) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_database.owner_url, pool_size=1)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def login(owner_engine: AsyncEngine, pg_database: PgTestDatabase) -> AsyncIterator[str]:
    """A login name unique to the test, dropped afterwards if the test created it."""
    name = f"{pg_database.name}_r{uuid.uuid4().hex[:4]}"
    try:
        yield name
    finally:
        async with owner_engine.begin() as conn:
            await conn.execute(sa.text(f"DROP ROLE IF EXISTS {name}"))


def _url(pg: PgTestDatabase, login: str, password: str) -> str:
    return (
        sa.make_url(pg.app_url)
        .set(username=login, password=password)
        .render_as_string(hide_password=False)
    )


async def _whoami(url: str) -> str:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return str((await conn.execute(sa.text("SELECT current_user"))).scalar_one())
    finally:
        await engine.dispose()


async def test_the_login_works_with_an_awkward_password_and_is_safe(
    owner_engine: AsyncEngine, pg_database: PgTestDatabase, login: str
) -> None:
    password = "it's:a%pass word;--"
    await create_app_login(owner_engine, login, password, app_role=pg_database.app_role)
    # trust auth on the test cluster accepts any password, so also check what was stored
    async with owner_engine.connect() as conn:
        flags = (
            await conn.execute(
                sa.text(
                    "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolinherit,"
                    " pg_has_role(:login, :app, 'USAGE') FROM pg_roles WHERE rolname = :login"
                ),
                {"login": login, "app": pg_database.app_role},
            )
        ).one()
    assert tuple(flags) == (True, False, False, False, True, True)
    url = _url(pg_database, login, password)
    assert await _whoami(url) == login
    engine = create_engine(url, pool_size=1)
    try:
        report = await check_app_role(engine, type("S", (), {"allow_superuser_db": False})())
        assert report is not None and report.problems == []
    finally:
        await engine.dispose()


async def test_provisioning_twice_resets_the_password(
    owner_engine: AsyncEngine, pg_database: PgTestDatabase, login: str
) -> None:
    await create_app_login(owner_engine, login, "first", app_role=pg_database.app_role)
    await create_app_login(owner_engine, login, "second", app_role=pg_database.app_role)
    async with owner_engine.connect() as conn:
        count = (
            await conn.execute(
                sa.text("SELECT count(*) FROM pg_roles WHERE rolname = :r"), {"r": login}
            )
        ).scalar_one()
    assert count == 1


@pytest.mark.parametrize(
    ("login", "password", "message"),
    [
        ("bad-name", "x", "invalid PostgreSQL role name"),
        ("x; DROP TABLE api_keys", "x", "invalid PostgreSQL role name"),
        ("ok_login", "", "empty password"),
    ],
)
async def test_unsafe_input_is_rejected_before_any_sql(
    owner_engine: AsyncEngine, pg_database: PgTestDatabase, login: str, password: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await create_app_login(owner_engine, login, password, app_role=pg_database.app_role)


async def test_the_login_cannot_be_the_group_role(
    owner_engine: AsyncEngine, pg_database: PgTestDatabase
) -> None:
    with pytest.raises(ValueError, match="must differ"):
        await create_app_login(
            owner_engine, pg_database.app_role, "x", app_role=pg_database.app_role
        )


async def test_an_existing_superuser_is_never_turned_into_the_app_login(
    owner_engine: AsyncEngine, pg_database: PgTestDatabase
) -> None:
    with pytest.raises(ValueError, match="superuser or BYPASSRLS"):
        await create_app_login(owner_engine, "postgres", "x", app_role=pg_database.app_role)
