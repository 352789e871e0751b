"""The role guard: row-level security only binds a login that is not superuser, not BYPASSRLS and
does not own (or belong to the owner of) the tables.

`check_app_role` installs the check on the engine's `connect` event, so every new connection is
checked before any query runs on it, then opens one connection to fail fast at startup. An unsafe
login is refused (`UnsafeDatabaseRoleError`) unless `allow_superuser_db` is set (development)."""

import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import is_postgresql
from .role_report import (
    ROLE_QUERY,
    GuardSettings,
    RoleReport,
    UnsafeDatabaseRoleError,
    report_from_row,
    verdict,
)

__all__ = [
    "ROLE_QUERY",
    "GuardSettings",
    "RoleReport",
    "UnsafeDatabaseRoleError",
    "check_app_role",
    "install_role_guard",
]


_GUARDED: "weakref.WeakSet[Engine]" = weakref.WeakSet()


def install_role_guard(engine: AsyncEngine, settings: GuardSettings) -> None:
    """Checks each new PostgreSQL connection before the pool hands it out. Idempotent."""
    if not is_postgresql(engine) or engine.sync_engine in _GUARDED:
        return

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        # The asyncpg adapter runs a coroutine on the raw connection from this sync hook.
        row = dbapi_connection.run_async(lambda conn: conn.fetchrow(ROLE_QUERY))
        report = report_from_row(row)
        record.info["role_report"] = report
        verdict(report, settings)

    event.listen(engine.sync_engine, "connect", on_connect)
    _GUARDED.add(engine.sync_engine)


async def check_app_role(engine: AsyncEngine, settings: GuardSettings) -> RoleReport | None:
    """Installs the guard and checks one connection now. None on SQLite (no roles: it is the
    single-developer path). Raises `UnsafeDatabaseRoleError`, or the connection error."""
    if not is_postgresql(engine):
        return None
    install_role_guard(engine, settings)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        report = raw.info.get("role_report")
    assert isinstance(report, RoleReport)
    return report
