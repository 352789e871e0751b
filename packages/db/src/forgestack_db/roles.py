"""Provisioning the application's login: a role that can log in, inherits the grants of the
application group role the migrations created, and has none of the powers RLS cannot bind."""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import is_postgresql
from .migrate import validated_role_name


async def create_app_login(
    owner_engine: AsyncEngine, login: str, password: str, *, app_role: str
) -> None:
    """Creates `login` (or resets its password) as a member of `app_role`. Runs as a role with
    CREATEROLE (the migration owner, or a DBA). Idempotent, so deploy scripts can run it each time."""
    if not is_postgresql(owner_engine):
        raise ValueError("application logins exist only on PostgreSQL")
    login = validated_role_name(login)
    app_role = validated_role_name(app_role)
    if login == app_role:
        raise ValueError("the login must differ from the application group role")
    if not password:
        raise ValueError("an empty password would leave the login unusable or open")
    # DDL takes no bind parameters; quote_literal on the server escapes the password correctly.
    async with owner_engine.begin() as conn:
        quoted = (
            await conn.execute(sa.text("SELECT quote_literal(:p)"), {"p": password})
        ).scalar_one()
        existing = (
            await conn.execute(
                sa.text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = :r"),
                {"r": login},
            )
        ).first()
        if existing is None:
            # Driver-level SQL: the quoted password may hold ':' which text() reads as a parameter.
            await conn.exec_driver_sql(
                f"CREATE ROLE {login} LOGIN INHERIT NOSUPERUSER NOBYPASSRLS NOCREATEDB "
                f"NOCREATEROLE PASSWORD {quoted}"
            )
        elif existing[0]:
            raise ValueError(
                f"role {login!r} is superuser or BYPASSRLS: it cannot be the app login"
            )
        else:
            # Only superusers may name the SUPERUSER/BYPASSRLS attributes in ALTER, even to deny.
            await conn.exec_driver_sql(f"ALTER ROLE {login} LOGIN INHERIT PASSWORD {quoted}")
        await conn.exec_driver_sql(f"GRANT {app_role} TO {login}")
