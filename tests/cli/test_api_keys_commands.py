"""`forgestack api-keys create | list | revoke` on PostgreSQL as the application login: the key is
alone on the last line, works, is listed without its secret, and stops working when revoked."""

import uuid

import pytest
from click.testing import CliRunner
from forgestack_cli.main import cli
from forgestack_db.api_keys import find_active_key
from forgestack_db.database import Database
from forgestack_shared.settings import Settings, get_settings

from tests.fixtures_db import PgTestDatabase, run_sync


@pytest.fixture
def app_env(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, pg_database: PgTestDatabase
) -> str:
    monkeypatch.setenv("DATABASE_URL", pg_database.app_url)
    get_settings.cache_clear()
    return pg_database.app_url


def _active(url: str, secret: str) -> tuple[str, str] | None:
    async def lookup() -> tuple[str, str] | None:
        db = Database.from_url(url)
        try:
            async with db.service_context("test: look up key") as session:
                key = await find_active_key(session, secret)
                return (str(key.org_id), key.role) if key else None
        finally:
            await db.dispose()

    return run_sync(lookup())


def test_create_prints_the_key_alone_on_the_last_line(app_env: str) -> None:
    org = f"acme-{uuid.uuid4().hex[:6]}"
    runner = CliRunner()
    first = runner.invoke(cli, ["api-keys", "create", "--org", org, "--role", "admin"])
    assert first.exit_code == 0, first.output
    lines = first.stdout.strip().splitlines()
    secret = lines[-1]
    assert secret.startswith("fsk_") and " " not in secret
    assert "created" in lines[0]
    found = _active(app_env, secret)
    assert found is not None and found[1] == "admin"

    second = runner.invoke(cli, ["api-keys", "create", "--org", org])
    assert second.exit_code == 0
    assert "created" not in second.stdout.splitlines()[0]
    other = _active(app_env, second.stdout.strip().splitlines()[-1])
    assert other == (found[0], "member")


def test_list_shows_prefixes_and_never_secrets_and_revoke_stops_a_key(app_env: str) -> None:
    org = f"globex-{uuid.uuid4().hex[:6]}"
    runner = CliRunner()
    created = runner.invoke(cli, ["api-keys", "create", "--org", org, "--role", "owner"])
    secret = created.stdout.strip().splitlines()[-1]
    key_id = created.stdout.split(" id ")[1].split()[0]
    listed = runner.invoke(cli, ["api-keys", "list", "--org", org])
    assert listed.exit_code == 0
    assert (
        secret[:12] in listed.stdout and secret not in listed.stdout and "active" in listed.stdout
    )
    revoked = runner.invoke(cli, ["api-keys", "revoke", key_id])
    assert revoked.exit_code == 0, revoked.output
    assert _active(app_env, secret) is None
    assert "revoked" in runner.invoke(cli, ["api-keys", "list", "--org", org]).stdout


def test_bad_input_is_a_clear_error(app_env: str) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["api-keys", "create", "--org", "x", "--role", "root"]).exit_code == 2
    assert runner.invoke(cli, ["api-keys", "create", "--org", " "]).exit_code == 2
    missing = runner.invoke(cli, ["api-keys", "revoke", str(uuid.uuid4())])
    assert missing.exit_code == 1 and "no API key" in missing.output
    unknown = runner.invoke(cli, ["api-keys", "list", "--org", "no-such-org-xyz"])
    assert unknown.exit_code == 1 and "no organisation" in unknown.output
