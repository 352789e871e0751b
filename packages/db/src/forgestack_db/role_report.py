"""What the role guard asks PostgreSQL and how it judges the answer, with no SQLAlchemy: the
engine's guard (`guard.py`) and the API's lean key door (`lean_keys.py`) both check every
connection they open with this query and this verdict."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from loguru import logger

from .rls_tables import TENANT_TABLES


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


def verdict(report: RoleReport, settings: GuardSettings) -> RoleReport:
    """The report when the login is safe (or allowed by ALLOW_SUPERUSER_DB); else raises."""
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


def report_from_row(row: Mapping[str, Any]) -> RoleReport:
    """`ROLE_QUERY`'s one row as a report."""
    return RoleReport(
        user=row["login"],
        privileged_roles=tuple(row["privileged"]),
        owned_tables=tuple(row["owned"]),
        unprotected_tables=tuple(row["unprotected"]),
    )
