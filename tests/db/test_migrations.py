"""Migrations are the only schema path: on both backends they must produce exactly the tables the
models describe, and reach the packaged head from any working directory."""

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from forgestack_db.engine import create_engine
from forgestack_db.migrate import current_revision, downgrade_async, head_revision, upgrade_async
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from tests.fixtures_db import PgTestDatabase


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [d for d in compare_metadata(context, SQLModel.metadata) if _ours(d)]


def _ours(diff: object) -> bool:
    """Ignore tables that other tools own (alembic's version table lives beside ours)."""
    text = repr(diff)
    return "alembic_version" not in text


async def _schema_diff(url: str) -> list[object]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_diff)
    finally:
        await engine.dispose()


async def test_sqlite_schema_matches_the_models(sqlite_url: str) -> None:
    assert await current_revision(sqlite_url) == head_revision()
    assert await _schema_diff(sqlite_url) == []


async def test_postgresql_schema_matches_the_models(pg_database: PgTestDatabase) -> None:
    assert await current_revision(pg_database.owner_url) == head_revision()
    assert await _schema_diff(pg_database.owner_url) == []


async def test_upgrade_is_idempotent_and_independent_of_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert not any(Path.cwd().glob("alembic.ini"))
    url = f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}"
    first = await upgrade_async(url)
    again = await upgrade_async(url)
    assert first == again == head_revision()


async def test_downgrade_then_upgrade_round_trips(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'rt.db'}"
    await upgrade_async(url)
    assert await downgrade_async(url, "base") is None
    assert await upgrade_async(url) == head_revision()
    assert await _schema_diff(url) == []
