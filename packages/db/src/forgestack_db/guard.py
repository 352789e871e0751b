"""The startup check: row-level security only binds a role that is not superuser, not BYPASSRLS and
does not own (or belong to the owner of) the tables. The API and the worker call `check_app_role`
before serving and refuse to start otherwise."""

from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from loguru import logger
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


_PRIVILEGED = sa.text("""
    SELECT r.rolname FROM pg_roles r
    WHERE (r.rolsuper OR r.rolbypassrls) AND pg_has_role(current_user, r.oid, 'MEMBER')
    ORDER BY r.rolname
""")
_TABLES = sa.text("""
    SELECT c.relname,
           pg_has_role(current_user, c.relowner, 'MEMBER') AS owned,
           c.relrowsecurity AND c.relforcerowsecurity AS protected
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY(:tables)
    ORDER BY c.relname
""")


async def inspect_role(engine: AsyncEngine) -> RoleReport | None:
    """None on SQLite, which has no roles (it is the single-developer path)."""
    if not is_postgresql(engine):
        return None
    async with engine.connect() as conn:
        user = (await conn.execute(sa.text("SELECT current_user"))).scalar_one()
        privileged = tuple((await conn.execute(_PRIVILEGED)).scalars())
        tables = (await conn.execute(_TABLES, {"tables": list(TENANT_TABLES)})).all()
    return RoleReport(
        user=user,
        privileged_roles=privileged,
        owned_tables=tuple(t.relname for t in tables if t.owned),
        unprotected_tables=tuple(t.relname for t in tables if not t.protected),
    )


async def check_app_role(engine: AsyncEngine, settings: GuardSettings) -> RoleReport | None:
    """Raises `UnsafeDatabaseRoleError` unless the login is safe or `allow_superuser_db` is set."""
    report = await inspect_role(engine)
    if report is None or not report.problems:
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
