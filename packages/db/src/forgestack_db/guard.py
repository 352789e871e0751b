"""The role guard: row-level security only binds a login that is not superuser, not BYPASSRLS and
does not own (or belong to the owner of) the tables.

`check_app_role` installs the check on the engine's `connect` event, so every new connection is
checked before any query runs on it, then opens one connection to fail fast at startup. An unsafe
login is refused (`UnsafeDatabaseRoleError`) unless `allow_superuser_db` is set (development)."""

import weakref
from dataclasses import dataclass
from typing import Any, Protocol

from loguru import logger
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import is_postgresql
from .models import TENANT_TABLES


class GuardSettings(Protocol):
    @property
    def allow_superuser_db(self) -> bool: ...


class UnsafeDatabaseRoleError(RuntimeError):
    """The application's database login would read around row-level security."""


@dataclass(frozen=True, slots=True)
class RoleReport:
    user: str
    privileged_roles: tuple[str, ...]
    """Superuser or BYPASSRLS roles the login is, or may `SET ROLE` to."""
    owned_tables: tuple[str, ...]
    """Tenant tables whose owner the login is, or may `SET ROLE` to."""
    unprotected_tables: tuple[str, ...]
    """Tenant tables present without ENABLE + FORCE ROW LEVEL SECURITY."""

    @property
    def problems(self) -> list[str]:
        found = []
        if self.privileged_roles:
            found.append(
                f"is or can become superuser/BYPASSRLS ({', '.join(self.privileged_roles)})"
            )
        if self.owned_tables:
            found.append(f"owns or can become owner of {', '.join(self.owned_tables)}")
        if self.unprotected_tables:
            found.append(
                f"tables without forced row-level security: {', '.join(self.unprotected_tables)}"
            )
        return found


_TABLES = ", ".join(f"'{name}'" for name in TENANT_TABLES)
ROLE_QUERY = f"""
    SELECT current_user::text AS login,
        ARRAY(SELECT r.rolname::text FROM pg_roles r
              WHERE (r.rolsuper OR r.rolbypassrls) AND pg_has_role(current_user, r.oid, 'MEMBER')
              ORDER BY 1) AS privileged,
        ARRAY(SELECT c.relname::text FROM pg_class c
              WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
                AND c.relname IN ({_TABLES}) AND pg_has_role(current_user, c.relowner, 'MEMBER')
              ORDER BY 1) AS owned,
        ARRAY(SELECT c.relname::text FROM pg_class c
              WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
                AND c.relname IN ({_TABLES}) AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
              ORDER BY 1) AS unprotected
"""  # noqa: S608 - only this module's table-name constants are interpolated


def _verdict(report: RoleReport, settings: GuardSettings) -> RoleReport:
    if not report.problems:
        return report
    message = f"database login {report.user!r} " + "; ".join(report.problems)
    if settings.allow_superuser_db:
        logger.warning("{} - allowed by ALLOW_SUPERUSER_DB (development only)", message)
        return report
    raise UnsafeDatabaseRoleError(
        f"{message}. Row-level security would not isolate tenants. Connect as a member of the "
        "application role (see `forgestack db create-app-login`), or set ALLOW_SUPERUSER_DB=true "
        "in development."
    )


_GUARDED: "weakref.WeakSet[Engine]" = weakref.WeakSet()


def install_role_guard(engine: AsyncEngine, settings: GuardSettings) -> None:
    """Checks each new PostgreSQL connection before the pool hands it out. Idempotent."""
    if not is_postgresql(engine) or engine.sync_engine in _GUARDED:
        return

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        # The asyncpg adapter runs a coroutine on the raw connection from this sync hook.
        row = dbapi_connection.run_async(lambda conn: conn.fetchrow(ROLE_QUERY))
        report = RoleReport(
            user=row["login"],
            privileged_roles=tuple(row["privileged"]),
            owned_tables=tuple(row["owned"]),
            unprotected_tables=tuple(row["unprotected"]),
        )
        record.info["role_report"] = report
        _verdict(report, settings)

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
