"""Which database failures mean "the database is unavailable" (a 503 the caller may retry), as
opposed to a bug (a 500): connection refused or cut, timeouts, the server shutting down; and which
mean the caller's text cannot be stored (a NUL, a 422).

Routes reach the database through `GuardedDatabase` (see `tenant.DatabaseDep`), so every session
they open translates those failures; the key lookup through the engine uses the same translation."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy.exc
from forgestack_db.database import Database
from forgestack_db.key_roles import ApiKeyRole
from sqlmodel.ext.asyncio.session import AsyncSession

from .database_errors import DatabaseUnavailableError, InvalidTextError

CHARACTER_NOT_IN_REPERTOIRE = "22021"
"""PostgreSQL's SQLSTATE for text it cannot store or compare: in practice a NUL (U+0000)."""

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # asyncpg's connect raises ConnectionRefusedError and friends unwrapped
    TimeoutError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    sqlalchemy.exc.DisconnectionError,
)


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, _UNAVAILABLE):
        return True
    return isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated


@asynccontextmanager
async def database_unavailable_as_503() -> AsyncIterator[None]:
    """Wraps a unit of database work: outage-shaped failures become `DatabaseUnavailableError`,
    text with a NUL `InvalidTextError`; any other database error stays a 500."""
    try:
        yield
    except Exception as exc:
        if is_unavailable(exc):
            raise DatabaseUnavailableError(type(exc).__name__) from exc
        if _is_invalid_text(exc):
            raise InvalidTextError(type(exc).__name__) from exc
        raise


def _is_invalid_text(exc: BaseException) -> bool:
    return isinstance(exc, sqlalchemy.exc.DBAPIError) and (
        getattr(exc.orig, "sqlstate", None) == CHARACTER_NOT_IN_REPERTOIRE
    )


class GuardedDatabase:
    """`Database`'s two doors, with outages surfacing as `DatabaseUnavailableError`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def tenant_context(
        self, org_id: uuid.UUID, user_id: str | None = None, role: ApiKeyRole | None = None
    ) -> AsyncIterator[AsyncSession]:
        async with (
            database_unavailable_as_503(),
            self.db.tenant_context(org_id, user_id, role) as session,
        ):
            yield session

    @asynccontextmanager
    async def service_context(self, reason: str) -> AsyncIterator[AsyncSession]:
        async with database_unavailable_as_503(), self.db.service_context(reason) as session:
            yield session
