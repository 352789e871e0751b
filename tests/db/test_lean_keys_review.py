"""Outside review of the lean key door (asyncpg, no SQLAlchemy): a database URL the engine takes
must work the same way through it, its secrets never in an error, and a lookup never waits
without bound for one of its pool's two connections."""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import sqlalchemy as sa
from forgestack_db.api_keys import hash_key
from forgestack_db.database import Database
from forgestack_db.engine import create_engine
from forgestack_db.lean_keys import CONNECTION_LOST, PostgresKeyLookup, lean_dsn
from forgestack_db.roles import create_app_login
from forgestack_db.startup import open_database
from sqlalchemy.engine import make_url

from tests.db.test_lean_keys import REASON, Flags
from tests.fixtures_db import PgTestDatabase, make_org_keys

PASSWORD = "Kq9/x7#Zp2"
"""A generated password as `openssl rand -base64` makes them: '/' (and '#') written raw, which
SQLAlchemy's URL parser accepts (everything up to the '@' is the password)."""


@pytest.fixture
async def slash_login_url(pg_database: PgTestDatabase) -> AsyncIterator[str]:
    """A second application login whose password holds '/' and '#', as a raw URL."""
    login = f"{pg_database.name}_slash"
    owner = create_engine(pg_database.owner_url)
    try:
        await create_app_login(owner, login, PASSWORD, app_role=pg_database.app_role)
    finally:
        await owner.dispose()
    base = make_url(pg_database.app_url)
    url = f"postgresql+asyncpg://{login}:{PASSWORD}@{base.host}:{base.port}/{base.database}"
    try:
        yield url
    finally:
        admin = await asyncpg.connect(lean_dsn(pg_database.superuser_url))
        try:
            await admin.execute(f"DROP OWNED BY {login}")
            await admin.execute(f"DROP ROLE IF EXISTS {login}")
        finally:
            await admin.close()


async def test_a_url_the_engine_takes_finds_the_key_through_the_lean_door_too(
    slash_login_url: str, app_db: Database
) -> None:
    """SQLAlchemy reads this URL's password whole; asyncpg's DSN parser stops the host part at
    the '/' and reads the password's head as a port (ValueError). Before the lean door the API
    started and authenticated with such a URL; now start-up (check_login, open) fails."""
    engine = Database.from_url(slash_login_url)
    try:
        async with engine.engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()
    keys = await make_org_keys(app_db)
    dsn = lean_dsn(slash_login_url)
    if dsn is None:
        return  # the engine's door, which works: that is a valid answer too
    lean = PostgresKeyLookup(dsn, Flags())
    try:
        await lean.open()
        found = await lean.find_active(hash_key(keys.member), REASON)
    finally:
        await lean.close()
    assert found is not None and found.org_id == keys.org_id


async def test_a_url_the_lean_door_cannot_parse_never_shows_its_password(
    slash_login_url: str,
) -> None:
    """Whatever goes wrong opening the door, the error (logged by start-up) holds no part of the
    password: today it is `invalid literal for int() with base 10: 'Kq9'`."""
    dsn = lean_dsn(slash_login_url)
    if dsn is None:
        return
    lean = PostgresKeyLookup(dsn, Flags())
    error: Exception | None = None
    try:
        await lean.open()
    except Exception as exc:
        error = exc  # any error: what matters is its text
    finally:
        await lean.close()
    for part in (PASSWORD, *PASSWORD.replace("#", "/").split("/")):
        assert part not in str(error), f"{type(error).__name__}: {error}"


async def test_a_lookup_does_not_wait_without_bound_for_a_pooled_connection(
    pg_database: PgTestDatabase, app_db: Database
) -> None:
    """Two lookups whose `last_used_at` write waits on a lock hold the pool's two connections;
    a third key, which needs no write at all (another organisation's), then waits for a
    connection with no timeout: forever. The engine's door had ten connections and a 30 s pool
    timeout (a 503). The lean door should answer it or fail it as unavailable (a 503) in
    bounded time."""
    blocked_a, blocked_b, free = (
        await make_org_keys(app_db),
        await make_org_keys(app_db),
        await make_org_keys(app_db),
    )
    lean = PostgresKeyLookup(lean_dsn(pg_database.app_url) or "", Flags())
    await lean.open()
    # `free`'s key was used just now: its lookup is a read only.
    assert await lean.find_active(hash_key(free.member), REASON) is not None
    admin = await asyncpg.connect(lean_dsn(pg_database.superuser_url))
    stuck: list[asyncio.Task[object]] = []
    try:
        await admin.execute(
            "UPDATE api_keys SET last_used_at = NULL WHERE org_id = ANY($1::uuid[])",
            [blocked_a.org_id, blocked_b.org_id],
        )
        tx = admin.transaction()
        await tx.start()
        # Blocks the lookups' UPDATE of last_used_at, not their SELECT.
        await admin.execute("LOCK TABLE api_keys IN EXCLUSIVE MODE")
        stuck = [
            asyncio.create_task(lean.find_active(hash_key(keys.member), REASON))
            for keys in (blocked_a, blocked_b)
        ]
        await asyncio.sleep(1.0)
        assert not any(task.done() for task in stuck)
        third = asyncio.create_task(lean.find_active(hash_key(free.member), REASON))
        done, _ = await asyncio.wait({third}, timeout=15.0)
        if not done:
            third.cancel()
        assert done, "the third lookup still waits for a pooled connection after 15 s"
        error = third.exception()
        assert error is None or isinstance(error, CONNECTION_LOST), repr(error)
    finally:
        await admin.close()  # ends the lock: the stuck lookups finish
        await asyncio.gather(*stuck, return_exceptions=True)
        await lean.close()


async def test_at_start_a_database_that_refuses_the_login_is_not_fatal_as_with_the_engine(
    pg_database: PgTestDatabase,
) -> None:
    """`open_database` (the engine's door) logs a database it cannot log in to at start (not
    created yet, too many connections, a password being rotated) and lets the process start,
    readiness saying 503 until it answers. The lean door raised the driver's error out of the
    lifespan (and out of `check_login` in `run`): the API did not start."""
    missing = make_url(pg_database.app_url).set(database=f"{pg_database.name}_missing")
    url = missing.render_as_string(hide_password=False)
    engine = await open_database(url, Flags())  # does not raise
    await engine.dispose()
    lean = PostgresKeyLookup(lean_dsn(url) or "", Flags())
    try:
        assert await lean.open() is None
    finally:
        await lean.close()
