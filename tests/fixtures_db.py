"""Database fixtures (a pytest plugin, loaded from tests/conftest.py): a real PostgreSQL database per
test session, migrated by a non-superuser owner, and reached by a separate application login - the
same three-role arrangement as production. Plus a migrated SQLite file per test for the dev path.

PostgreSQL comes from TEST_POSTGRES_URL (default: postgres on 127.0.0.1:5432, trust auth). When it
is unreachable the tests that need it skip with the reason, except under CI=true, where they fail.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from forgestack_db.database import Database
from forgestack_db.engine import create_engine
from forgestack_db.migrate import upgrade_async
from forgestack_db.roles import create_app_login
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine from a sync fixture on its own thread, leaving pytest-asyncio's loop alone."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@dataclass(frozen=True, slots=True)
class PgTestDatabase:
    name: str
    superuser_url: str
    owner_url: str
    """The schema owner: ran the migrations; CREATEROLE, not superuser."""
    app_url: str
    """The application login: a member of `app_role`, nothing more."""
    app_role: str
    owner: str
    login: str


def _libpq(url: str) -> str:
    """asyncpg wants `postgresql://`; SQLAlchemy wants `postgresql+asyncpg://`."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _with(url: str, *, database: str, user: str | None = None, password: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql+asyncpg", database=database)
    if user is not None:
        parsed = parsed.set(username=user, password=password)
    return parsed.render_as_string(hide_password=False)


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(_libpq(url), timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The cluster's superuser URL, checked reachable once per session."""
    url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        run_sync(_admin(url, "SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        reason = f"PostgreSQL unreachable at {make_url(url).render_as_string()}: {exc!r}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: a missing database fails the run)")
        pytest.skip(reason)
    return url


@pytest.fixture(scope="session")
def pg_database(postgres_url: str) -> Iterator[PgTestDatabase]:
    """A fresh database for the session: owner and login roles unique to it, dropped at the end."""
    name = f"forgestack_t_{uuid.uuid4().hex[:12]}"
    owner, app_role, login = f"{name}_owner", f"{name}_app", f"{name}_login"
    password = uuid.uuid4().hex
    run_sync(
        _admin(
            postgres_url,
            f"CREATE ROLE {owner} LOGIN CREATEROLE PASSWORD '{password}'",
            f"CREATE DATABASE {name} OWNER {owner}",
        )
    )
    db = PgTestDatabase(
        name=name,
        superuser_url=_with(postgres_url, database=name),
        owner_url=_with(postgres_url, database=name, user=owner, password=password),
        app_url=_with(postgres_url, database=name, user=login, password=password),
        app_role=app_role,
        owner=owner,
        login=login,
    )
    try:
        run_sync(upgrade_async(db.owner_url, app_role=app_role))
        run_sync(_create_login(db, password))
        yield db
    finally:
        run_sync(
            _admin(
                postgres_url,
                f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
                f"DROP ROLE IF EXISTS {login}",
                f"DROP ROLE IF EXISTS {app_role}",
                f"DROP ROLE IF EXISTS {owner}",
            )
        )


async def _create_login(db: PgTestDatabase, password: str) -> None:
    engine = create_engine(db.owner_url, pool_size=1)
    try:
        await create_app_login(engine, db.login, password, app_role=db.app_role)
    finally:
        await engine.dispose()


@pytest.fixture
async def app_db(pg_database: PgTestDatabase) -> AsyncIterator[Database]:
    """The application's view of PostgreSQL: row-level security applies to everything it does."""
    db = Database.from_url(pg_database.app_url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite file, the `forgestack dev` default."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'forgestack.db'}"
    run_sync(upgrade_async(url))
    return url


@pytest.fixture
async def sqlite_db(sqlite_url: str) -> AsyncIterator[Database]:
    db = Database.from_url(sqlite_url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def scratch_pg(postgres_url: str, pg_database: PgTestDatabase) -> Iterator[PgTestDatabase]:
    """An empty database of its own (same roles as `pg_database`), for tests that break a schema."""
    name = f"{pg_database.name}_s{uuid.uuid4().hex[:6]}"
    run_sync(_admin(postgres_url, f"CREATE DATABASE {name} OWNER {pg_database.owner}"))

    def moved(url: str) -> str:
        return make_url(url).set(database=name).render_as_string(hide_password=False)

    try:
        yield PgTestDatabase(
            name=name,
            superuser_url=moved(pg_database.superuser_url),
            owner_url=moved(pg_database.owner_url),
            app_url=moved(pg_database.app_url),
            app_role=pg_database.app_role,
            owner=pg_database.owner,
            login=pg_database.login,
        )
    finally:
        run_sync(_admin(postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@dataclass(frozen=True, slots=True)
class OrgKeys:
    """An organisation with one API key per role: the secrets, as a client would hold them."""

    org_id: uuid.UUID
    name: str
    member: str
    owner: str
    admin: str


async def make_org_keys(db: Database, name: str | None = None) -> OrgKeys:
    from forgestack_db.api_keys import issue_api_key
    from forgestack_db.models import ApiKeyRole
    from forgestack_db.organisations import get_or_create_organisation

    name = name or f"org-{uuid.uuid4().hex[:8]}"
    async with db.service_context("test setup: organisation and keys") as session:
        org, _ = await get_or_create_organisation(session, name)
        secrets = {
            role: (await issue_api_key(session, org.id, role, f"{role.value} key")).secret
            for role in ApiKeyRole
        }
    return OrgKeys(
        org_id=org.id,
        name=name,
        member=secrets[ApiKeyRole.MEMBER],
        owner=secrets[ApiKeyRole.OWNER],
        admin=secrets[ApiKeyRole.ADMIN],
    )


@pytest.fixture
async def pg_app(
    settings: Any, monkeypatch: pytest.MonkeyPatch, pg_database: PgTestDatabase
) -> AsyncIterator[Any]:
    """The API app, lifespan run, connected to PostgreSQL as the application login."""
    from forgestack_api.main import create_app
    from forgestack_shared.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", pg_database.app_url)
    get_settings.cache_clear()
    app = create_app()
    async with app.router.lifespan_context(app):
        yield app
