"""`forgestack db ...`: schema migrations and the application's PostgreSQL login.

Migrations run as the schema owner (DATABASE_MIGRATION_URL, or DATABASE_URL when unset, which is
right for SQLite); the API and worker then connect as a login that only belongs to the application
role the migrations granted (DATABASE_APP_ROLE). `create-app-login` makes that login."""

import asyncio
import os
from typing import TYPE_CHECKING

import click
from forgestack_db.api_keys import IssuedApiKey, count_api_keys, issue_api_key
from forgestack_db.engine import create_engine
from forgestack_db.guard import UnsafeDatabaseRoleError
from forgestack_db.migrate import current_revision, head_revision, upgrade_async
from forgestack_db.models import ApiKeyRole
from forgestack_db.organisations import get_or_create_organisation
from forgestack_db.roles import create_app_login
from forgestack_db.startup import open_database
from forgestack_shared.settings import Settings, get_settings
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from .stack import DevStack


def migration_url(settings: Settings) -> str:
    return settings.database_migration_url or settings.effective_database_url


def shown(url: str) -> str:
    """The URL without its password, fit for a terminal or a log."""
    return make_url(url).render_as_string(hide_password=True)


def run_migrations(settings: Settings) -> str | None:
    """Upgrades to head as the owner; returns the revision now current."""
    return asyncio.run(upgrade_async(migration_url(settings), app_role=settings.database_app_role))


@click.group()
def db() -> None:
    """Database schema and roles."""


@db.command()
def upgrade() -> None:
    """Apply every pending migration (as DATABASE_MIGRATION_URL's owner login)."""
    settings = get_settings()
    url = migration_url(settings)
    click.echo(f"migrating {shown(url)} ...")
    try:
        revision = run_migrations(settings)
    except (OSError, SQLAlchemyError) as exc:
        raise click.ClickException(
            f"migration failed: {getattr(exc, 'orig', None) or exc}. Migrations run as the schema "
            "owner: point DATABASE_MIGRATION_URL at its login."
        ) from exc
    click.echo(f"database at revision {revision} (head {head_revision()})")


@db.command()
def current() -> None:
    """Print the database's revision and the newest this release knows."""
    settings = get_settings()
    revision = asyncio.run(current_revision(migration_url(settings)))
    head = head_revision()
    click.echo(f"current {revision or 'none'}, head {head}")
    if revision != head:
        raise SystemExit("pending migrations: run `forgestack db upgrade`")


@db.command("create-app-login")
@click.argument("login")
@click.option(
    "--password-env",
    default="FORGESTACK_APP_DB_PASSWORD",
    show_default=True,
    help="Environment variable holding the password; prompted for when it is unset.",
)
def create_app_login_command(login: str, password_env: str) -> None:
    """Create (or reset the password of) the PostgreSQL LOGIN the API and worker use: a member
    of DATABASE_APP_ROLE, not superuser, not BYPASSRLS. Runs as DATABASE_MIGRATION_URL."""
    settings = get_settings()
    password = os.environ.get(password_env) or click.prompt(
        f"password for {login}", hide_input=True, confirmation_prompt=True
    )
    url = migration_url(settings)
    asyncio.run(_create_login(url, login, password, settings.database_app_role))
    click.echo(
        f"login {login} is a member of {settings.database_app_role}; point DATABASE_URL at it"
    )


async def _create_login(url: str, login: str, password: str, app_role: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        await create_app_login(engine, login, password, app_role=app_role)
    finally:
        await engine.dispose()


DEV_ORG = "dev"


def prepare_dev_database(stack: "DevStack") -> None:
    """`forgestack dev` step: migrate, and on first start (no API key anywhere) create the `dev`
    organisation with an admin key, shown once in the summary."""
    from .stack import DevError

    settings = stack.settings
    # The data dir made absolute by the stack, so this is the file the children will open.
    url = settings.database_url or f"sqlite+aiosqlite:///{stack.data_dir / 'forgestack.db'}"
    owner_url = settings.database_migration_url or url
    try:
        revision = asyncio.run(upgrade_async(owner_url, app_role=settings.database_app_role))
        issued = asyncio.run(_first_admin_key(url, settings))
    except (OSError, SQLAlchemyError, UnsafeDatabaseRoleError) as exc:
        raise DevError(f"database setup failed on {shown(owner_url)}: {exc}") from exc
    stack.report("Schema", f"migrated to revision {revision}")
    if issued is None:
        new_ones = f"forgestack api-keys create --org {DEV_ORG}"
        stack.report("Org API keys", f"exist already (new ones: {new_ones})")
    else:
        stack.report(f"Org '{DEV_ORG}' admin key", f"{issued.secret} (shown once)")


async def _first_admin_key(url: str, settings: Settings) -> IssuedApiKey | None:
    db = await open_database(url, settings)
    try:
        async with db.service_context("forgestack dev: first organisation and key") as session:
            if await count_api_keys(session):
                return None
            org, _ = await get_or_create_organisation(session, DEV_ORG)
            return await issue_api_key(session, org.id, ApiKeyRole.ADMIN, "forgestack dev")
    finally:
        await db.dispose()
