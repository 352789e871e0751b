"""`forgestack api-keys ...`: organisation API keys from the command line. `create` prints the key
alone on its last line, so scripts can take it with `tail -n 1`; it is never shown again."""

import asyncio
import uuid

import click
from forgestack_db.api_keys import IssuedApiKey, issue_api_key, list_api_keys, revoke_api_key
from forgestack_db.database import Database
from forgestack_db.models import ApiKey, ApiKeyRole, Organisation
from forgestack_db.organisations import find_organisation, get_or_create_organisation
from forgestack_db.startup import open_database
from forgestack_shared.settings import Settings, get_settings

REASON = "forgestack api-keys command"
ROLES = click.Choice([role.value for role in ApiKeyRole])


async def _database(settings: Settings) -> Database:
    return await open_database(settings.effective_database_url, settings)


async def create_key(
    settings: Settings, org_name: str, role: ApiKeyRole, name: str
) -> tuple[Organisation, bool, IssuedApiKey]:
    """(organisation, whether it was created, the issued key)."""
    db = await _database(settings)
    try:
        async with db.service_context(REASON) as session:
            org, created = await get_or_create_organisation(session, org_name)
            issued = await issue_api_key(session, org.id, role, name)
        return org, created, issued
    finally:
        await db.dispose()


@click.group("api-keys")
def api_keys() -> None:
    """Organisation API keys (stored hashed; the key is shown once)."""


@api_keys.command()
@click.option("--org", "org_name", required=True, help="Organisation name; created if needed.")
@click.option("--role", type=ROLES, default=ApiKeyRole.MEMBER.value, show_default=True)
@click.option("--name", default="cli", show_default=True, help="A label to recognise the key.")
def create(org_name: str, role: str, name: str) -> None:
    """Create a key; its secret is the last line of the output."""
    try:
        org, created, issued = asyncio.run(
            create_key(get_settings(), org_name, ApiKeyRole(role), name)
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    click.echo(f"organisation {org.name} ({org.id}){' created' if created else ''}")
    click.echo(f"key {issued.record.prefix} ({issued.record.role}) id {issued.record.id}")
    click.echo("store it now; it is not shown again:")
    click.echo(issued.secret)


@api_keys.command("list")
@click.option("--org", "org_name", required=True)
def list_command(org_name: str) -> None:
    """The organisation's keys: prefix, role, state; never secrets."""
    keys = asyncio.run(_list(get_settings(), org_name))
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
        click.echo(f"{key.id}  {key.prefix}  {key.role:<6}  {state:<18}  used {used}  {key.name}")


async def _list(settings: Settings, org_name: str) -> list[ApiKey]:
    db = await _database(settings)
    try:
        async with db.service_context(REASON) as session:
            org = await find_organisation(session, org_name)
            if org is None:
                raise click.ClickException(f"no organisation named {org_name!r}")
        async with db.tenant_context(org.id) as session:
            return await list_api_keys(session, org.id)
    finally:
        await db.dispose()


@api_keys.command()
@click.argument("key_id", type=click.UUID)
def revoke(key_id: uuid.UUID) -> None:
    """Revoke a key by id: API processes refuse it within API_KEY_CACHE_TTL_S."""
    key = asyncio.run(_revoke(get_settings(), key_id))
    if key is None:
        raise click.ClickException(f"no API key with id {key_id}")
    click.echo(f"revoked {key.prefix} ({key.name})")


async def _revoke(settings: Settings, key_id: uuid.UUID) -> ApiKey | None:
    db = await _database(settings)
    try:
        async with db.service_context(REASON) as session:
            return await revoke_api_key(session, key_id)
    finally:
        await db.dispose()
