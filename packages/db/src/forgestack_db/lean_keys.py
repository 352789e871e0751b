"""The API key lookup on PostgreSQL straight through asyncpg: what every request that carries an
organisation key may need, without SQLAlchemy, SQLModel and greenlet (about 22 MiB of an API
process that otherwise serves enqueues from Redis alone).

It is the same door as `Database.service_context` for this one read, not a new one: each lookup
is one transaction that first sets `app.service_context` transaction-locally (row-level security
lets a service context read across tenants, as it does for the engine), logs the reason the same
way, reads the unrevoked key by its hash and refreshes `last_used_at` at most once a minute
(`LAST_USED_RESOLUTION`). Every connection the pool opens is checked by the role guard's query and
verdict (`role_report`) before it is used, as the engine's connect hook does.

Only a plain `postgresql+asyncpg://user:password@host:port/database` URL takes this door: options
in a query string are SQLAlchemy's to translate, so such a URL (and SQLite) keep the engine's."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from loguru import logger

from .key_format import LAST_USED_RESOLUTION
from .role_report import ROLE_QUERY, GuardSettings, RoleReport, report_from_row, verdict

SCHEME = "postgresql+asyncpg://"
CONNECT_TIMEOUT_S = 10.0
"""As the engine's (`engine.CONNECT_TIMEOUT_S`): an unreachable database fails a lookup fast."""
POOL_SIZE = 2
"""Lookups happen once per key per API_KEY_CACHE_TTL_S, plus readiness probes: two connections
serve them; more requests wait for one rather than open more."""
ACQUIRE_TIMEOUT_S = CONNECT_TIMEOUT_S
"""How long a lookup waits for a pooled connection (opening one included) before it is a 503."""
SERVICE_SETTING = "app.service_context"
"""As `database.SERVICE_SETTING`: the variable the row-level-security policies read."""

_FIND = (
    "SELECT id, org_id, role, name, last_used_at FROM api_keys"
    " WHERE key_hash = $1 AND revoked_at IS NULL"
)
_MARK_USED = "UPDATE api_keys SET last_used_at = $2 WHERE id = $1"

CONNECTION_LOST: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
)
"""Failures that mean the database did not answer (refused, cut, shutting down), not a bug."""
STALE_CONNECTION: tuple[type[BaseException], ...] = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
"""A pooled connection that was closed under it: worth one more try on a fresh connection."""


@dataclass(frozen=True, slots=True)
class ActiveKey:
    id: uuid.UUID
    org_id: uuid.UUID
    role: str
    name: str


def lean_dsn(url: str) -> str | None:
    """asyncpg's DSN for `url`, or None when the URL is not one this door takes (see above).

    SQLAlchemy reads everything up to the first '@' as the user and password, so a generated
    password may hold a raw '/' or '#'; asyncpg's DSN parser (urllib's) ends the host part at
    either, then reads the password's head as a port and says so in its error. Such a URL keeps
    the engine's door, where it works."""
    if not url.startswith(SCHEME) or "?" in url or "#" in url:
        return None
    rest = url.removeprefix(SCHEME)
    userinfo, at, _ = rest.partition("@")
    if at and "/" in userinfo:
        return None
    return "postgresql://" + rest


class PostgresKeyLookup:
    def __init__(self, dsn: str, settings: GuardSettings) -> None:
        self._dsn = dsn
        self._settings = settings
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> RoleReport | None:
        """Creates the pool and checks one connection now, so an unsafe login stops the process
        at start (`UnsafeDatabaseRoleError`). A database that is down does not, nor one that
        refuses the login for now (not created yet, too many connections: any server error, as
        `open_database` lets any DBAPIError pass): it is checked on the first connection that
        opens, before any lookup runs on it. None when it was down."""
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=0,
            max_size=POOL_SIZE,
            timeout=CONNECT_TIMEOUT_S,
            init=self._check_role,
        )
        try:
            async with self._pool.acquire() as conn:
                return report_from_row(await conn.fetchrow(ROLE_QUERY))
        except (*CONNECTION_LOST, asyncpg.PostgresError) as exc:
            logger.warning(
                "database unreachable at startup ({}: {}); the role is checked on first connection",
                type(exc).__name__,
                exc,
            )
            return None

    async def _check_role(self, conn: asyncpg.Connection) -> None:
        verdict(report_from_row(await conn.fetchrow(ROLE_QUERY)), self._settings)

    async def find_active(self, key_hash: str, reason: str) -> ActiveKey | None:
        """The unrevoked key with this hash, its use recorded; None when there is none. Raises
        one of `CONNECTION_LOST` when the database cannot answer."""
        logger.bind(service_context=reason).info("service context opened: {}", reason)
        row = await self._on_live_connection(lambda conn: self._find(conn, key_hash, reason))
        if row is None:
            return None
        return ActiveKey(
            id=uuid.UUID(str(row["id"])),
            org_id=uuid.UUID(str(row["org_id"])),
            role=row["role"],
            name=row["name"],
        )

    async def _find(self, conn: asyncpg.Connection, key_hash: str, reason: str) -> Any:
        async with conn.transaction():
            await conn.execute("SELECT set_config($1, $2, true)", SERVICE_SETTING, reason)
            row = await conn.fetchrow(_FIND, key_hash)
            if row is None:
                return None
            now = datetime.now(UTC)
            used = row["last_used_at"]
            if used is None or now - used >= LAST_USED_RESOLUTION:
                await conn.execute(_MARK_USED, row["id"], now)
        return row

    async def ping(self) -> None:
        await self._on_live_connection(lambda conn: conn.fetchval("SELECT 1"))

    async def _on_live_connection(
        self, work: Callable[[asyncpg.Connection], Awaitable[Any]]
    ) -> Any:
        """Runs `work` on a pooled connection. One the server closed since (a restart) is only
        found out on use when asyncpg has not read its termination yet: it is then closed, so the
        pool opens a new one, and `work` runs again, as the engine's pre-ping would have given
        it. Every pooled connection may be dead: one more try than the pool holds. The work is
        a read and an idempotent `last_used_at` write, so running it again changes nothing."""
        for _ in range(POOL_SIZE):
            async with self._connection() as conn:
                try:
                    return await work(conn)
                except STALE_CONNECTION:
                    conn.terminate()
        async with self._connection() as conn:
            return await work(conn)

    def _connection(self) -> "asyncpg.pool.PoolAcquireContext":
        """Waits at most ACQUIRE_TIMEOUT_S for one of the pool's connections (TimeoutError, an
        outage's answer): with two of them, lookups stuck on a lock or a hung server would
        otherwise hold every later request, of every organisation, without bound."""
        if self._pool is None:
            raise RuntimeError("the key lookup is not open")
        return self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
