"""`forgestack db ...` and the `forgestack dev` database step, against SQLite and a fresh
PostgreSQL database: migrations from any directory, the application login, the first admin key."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from forgestack_cli.db_commands import DEV_ORG, prepare_dev_database
from forgestack_cli.main import cli
from forgestack_cli.stack import DevStack
from forgestack_db.api_keys import find_active_key
from forgestack_db.database import Database
from forgestack_db.engine import create_engine
from forgestack_db.guard import check_app_role
from forgestack_db.migrate import head_revision
from forgestack_shared.settings import Settings, get_settings

from tests.fixtures_db import PgTestDatabase, run_sync


def _env(monkeypatch: pytest.MonkeyPatch, **values: str) -> Settings:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return get_settings()


def test_upgrade_runs_from_any_directory_as_an_installed_command(tmp_path: Path) -> None:
    """A real process in a directory with no project files: the migrations ship in the package."""
    env = os.environ | {"FORGESTACK_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)
    env.pop("DATABASE_MIGRATION_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "forgestack_cli", "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"database at revision {head_revision()}" in done.stdout
    assert (tmp_path / "data" / "forgestack.db").exists()


def test_current_fails_until_upgraded(settings: Settings) -> None:
    runner = CliRunner()
    pending = runner.invoke(cli, ["db", "current"])
    assert pending.exit_code != 0 and "forgestack db upgrade" in pending.output
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(cli, ["db", "current"]).exit_code == 0


def test_upgrade_and_app_login_on_postgresql(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, scratch_pg: PgTestDatabase
) -> None:
    """The documented production path: migrate as the owner, create the login, connect as it."""
    login = f"{scratch_pg.name}_cli"
    _env(
        monkeypatch,
        DATABASE_MIGRATION_URL=scratch_pg.owner_url,
        DATABASE_APP_ROLE=scratch_pg.app_role,
        FORGESTACK_APP_DB_PASSWORD="s3cret:%'pw",
    )
    runner = CliRunner()
    upgraded = runner.invoke(cli, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    owner_password = sa.make_url(scratch_pg.owner_url).password
    assert owner_password and owner_password not in upgraded.output and "***" in upgraded.output
    try:
        created = runner.invoke(cli, ["db", "create-app-login", login])
        assert created.exit_code == 0, created.output
        assert "s3cret" not in created.output
        app_url = sa.make_url(scratch_pg.app_url).set(username=login, password="s3cret:%'pw")

        async def check() -> object:
            engine = create_engine(app_url.render_as_string(hide_password=False), pool_size=1)
            try:
                return await check_app_role(engine, settings)
            finally:
                await engine.dispose()

        report = run_sync(check())
        assert report is not None and report.problems == []  # type: ignore[attr-defined]
    finally:
        run_sync(_drop_role(scratch_pg, login))


async def _drop_role(pg: PgTestDatabase, role: str) -> None:
    engine = create_engine(pg.superuser_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))
    finally:
        await engine.dispose()


def test_dev_migrates_and_creates_the_first_admin_key_once(settings: Settings) -> None:
    stack = DevStack.create(settings)
    prepare_dev_database(stack)
    summary = dict(stack.summary)
    assert summary["Schema"] == f"migrated to revision {head_revision()}"
    secret = summary[f"Org '{DEV_ORG}' admin key"].split()[0]

    async def lookup() -> tuple[str, str] | None:
        db = Database.from_url(f"sqlite+aiosqlite:///{stack.data_dir / 'forgestack.db'}")
        try:
            async with db.service_context("test: check dev key") as session:
                key = await find_active_key(session, secret)
                return (key.role, key.name) if key else None
        finally:
            await db.dispose()

    assert run_sync(lookup()) == ("admin", "forgestack dev")
    again = DevStack.create(settings)
    prepare_dev_database(again)
    assert "Org API keys" in dict(again.summary)
    assert not any("admin key" in label for label, _ in again.summary)


def test_dev_reports_a_database_it_cannot_migrate(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forgestack_cli.stack import DevError

    _env(
        monkeypatch,
        DATABASE_URL=f"postgresql+asyncpg://nobody:pw@127.0.0.1:1/x{uuid.uuid4().hex[:4]}",
    )
    with pytest.raises(DevError, match="database setup failed") as caught:
        prepare_dev_database(DevStack.create(get_settings()))
    assert ":pw@" not in str(caught.value)


def test_upgrade_as_the_app_login_fails_with_a_hint(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, scratch_pg: PgTestDatabase
) -> None:
    _env(monkeypatch, DATABASE_URL=scratch_pg.app_url, DATABASE_APP_ROLE=scratch_pg.app_role)
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 1
    assert "permission denied" in result.output and "DATABASE_MIGRATION_URL" in result.output
