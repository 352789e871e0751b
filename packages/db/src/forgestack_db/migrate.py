"""Runs the Alembic migrations shipped inside this package, so `forgestack db upgrade` works from
any directory and from an installed wheel (no alembic.ini to find)."""

import asyncio
import re
from collections.abc import Callable

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from .engine import create_engine

SCRIPT_LOCATION = "forgestack_db:migrations"
DEFAULT_APP_ROLE = "forgestack_app"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def validated_role_name(name: str) -> str:
    """Role names are spliced into DDL (identifiers cannot be bound), so only plain ones pass."""
    if not _ROLE_NAME.fullmatch(name):
        raise ValueError(
            f"invalid PostgreSQL role name {name!r}: use [a-z_][a-z0-9_]*, <= 63 chars"
        )
    return name


def alembic_config(url: str, app_role: str = DEFAULT_APP_ROLE) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    # ConfigParser treats % as interpolation; a password may contain one.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["app_role"] = validated_role_name(app_role)
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://")).get_current_head()


async def upgrade_async(
    url: str, revision: str = "head", *, app_role: str = DEFAULT_APP_ROLE
) -> str | None:
    """Upgrades the schema at `url` (the owner's login) and returns the revision now current."""
    return await _migrate(url, command.upgrade, revision, app_role)


async def downgrade_async(
    url: str, revision: str, *, app_role: str = DEFAULT_APP_ROLE
) -> str | None:
    """Downgrades to `revision` (`base` drops every table); returns the revision now current."""
    return await _migrate(url, command.downgrade, revision, app_role)


async def _migrate(
    url: str, step: Callable[[Config, str], None], revision: str, app_role: str
) -> str | None:
    config = alembic_config(url, app_role)
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run, step, config, revision)
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
    finally:
        await engine.dispose()


def upgrade(url: str, revision: str = "head", *, app_role: str = DEFAULT_APP_ROLE) -> str | None:
    """Synchronous entry for the CLI and test fixtures (must not run inside an event loop)."""
    return asyncio.run(upgrade_async(url, revision, app_role=app_role))


async def current_revision(url: str) -> str | None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
    finally:
        await engine.dispose()


def _run(
    connection: Connection, step: Callable[[Config, str], None], config: Config, revision: str
) -> None:
    config.attributes["connection"] = connection
    step(config, revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
