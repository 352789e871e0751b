"""Where the API looks API keys up: PostgreSQL's lean door (`forgestack_db.lean_keys`, asyncpg
alone) when the database URL allows it, else the engine's service context as every other
database read (SQLite, the no-config default, and URLs with driver options).

Both answer the same question the same way: the unrevoked key with this hash, its use recorded,
in a service-context transaction; an outage is `DatabaseUnavailableError` from either."""

import asyncio
from typing import Protocol

from forgestack_db.lean_keys import CONNECTION_LOST, ActiveKey, PostgresKeyLookup, lean_dsn
from forgestack_db.role_report import GuardSettings

from .database_errors import DatabaseUnavailableError
from .lazy_database import LazyDatabase


class KeyLookup(Protocol):
    async def find_active(self, key_hash: str, reason: str) -> ActiveKey | None:
        """Raises `DatabaseUnavailableError` when the database cannot answer."""

    async def ping(self) -> None:
        """The readiness probe's `SELECT 1`."""

    async def close(self) -> None: ...


class LeanKeyLookup:
    def __init__(self, lookup: PostgresKeyLookup) -> None:
        self._lookup = lookup

    async def find_active(self, key_hash: str, reason: str) -> ActiveKey | None:
        try:
            return await self._lookup.find_active(key_hash, reason)
        except CONNECTION_LOST as exc:
            raise DatabaseUnavailableError(type(exc).__name__) from exc

    async def ping(self) -> None:
        await self._lookup.ping()

    async def close(self) -> None:
        await self._lookup.close()


class EngineKeyLookup:
    """Through the engine; loads SQLAlchemy if nothing has yet."""

    def __init__(self, database: LazyDatabase) -> None:
        self._database = database

    async def find_active(self, key_hash: str, reason: str) -> ActiveKey | None:
        from forgestack_db.api_keys import find_active_key_by_hash, mark_used

        from .guarded_database import GuardedDatabase

        async with GuardedDatabase(self._database.get()).service_context(reason) as session:
            key = await find_active_key_by_hash(session, key_hash)
            if key is None:
                return None
            await mark_used(session, key)
        return ActiveKey(id=key.id, org_id=key.org_id, role=key.role, name=key.name)

    async def ping(self) -> None:
        import sqlalchemy as sa

        async with self._database.get().engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        """The engine is the database's to dispose of."""


async def open_key_lookup(url: str, settings: GuardSettings, database: LazyDatabase) -> KeyLookup:
    """Raises `UnsafeDatabaseRoleError` when the lean door's login would bypass row-level security
    (the engine's door is checked by `open_database`, which made `database`)."""
    dsn = lean_dsn(url)
    if dsn is None:
        return EngineKeyLookup(database)
    lookup = PostgresKeyLookup(dsn, settings)
    await lookup.open()
    return LeanKeyLookup(lookup)


def check_login(url: str, settings: GuardSettings) -> None:
    """`check_database_login` through the lean door when the URL allows it, so the process that
    goes on to serve (uvicorn with one worker) has not loaded SQLAlchemy to check its login.
    Raises `UnsafeDatabaseRoleError`; a database that is down passes, as there."""
    dsn = lean_dsn(url)
    if dsn is None:
        from forgestack_db.startup import check_database_login

        check_database_login(url, settings)
        return
    asyncio.run(_check_lean(PostgresKeyLookup(dsn, settings)))


async def _check_lean(lookup: PostgresKeyLookup) -> None:
    try:
        await lookup.open()  # each connection it opens is checked: an unsafe login raises here
    finally:
        await lookup.close()
