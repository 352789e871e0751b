"""The audit table is append-only: UPDATE, DELETE and TRUNCATE fail for the application (no
privilege) and for the owner (a statement trigger); on SQLite a trigger rejects them too."""

import pytest
import sqlalchemy as sa
from forgestack_db.database import Database
from forgestack_db.engine import create_engine
from sqlalchemy.exc import DBAPIError

from tests.db.helpers import add_audit, make_org
from tests.fixtures_db import PgTestDatabase

CHANGES = [
    "UPDATE audit_logs SET action = 'tampered'",
    "DELETE FROM audit_logs",
    "TRUNCATE audit_logs",
]


@pytest.mark.parametrize("statement", CHANGES)
async def test_the_application_cannot_change_audit_rows(app_db: Database, statement: str) -> None:
    org = await make_org(app_db)
    await add_audit(app_db, org)
    with pytest.raises(DBAPIError, match="permission denied"):
        async with app_db.service_context("test: tamper") as session:
            await session.exec(sa.text(statement))


@pytest.mark.parametrize("statement", CHANGES)
async def test_the_owner_cannot_change_audit_rows_either(
    app_db: Database, pg_database: PgTestDatabase, statement: str
) -> None:
    org = await make_org(app_db)
    await add_audit(app_db, org)
    owner = create_engine(pg_database.owner_url, pool_size=1)
    try:
        with pytest.raises(DBAPIError, match="append-only"):
            async with owner.begin() as conn:
                await conn.execute(sa.text(statement))
    finally:
        await owner.dispose()


@pytest.mark.parametrize("statement", CHANGES[:2])
async def test_sqlite_rejects_changes_to_audit_rows(sqlite_db: Database, statement: str) -> None:
    org = await make_org(sqlite_db)
    await add_audit(sqlite_db, org)
    with pytest.raises(DBAPIError, match="append-only"):
        async with sqlite_db.service_context("test: tamper") as session:
            await session.exec(sa.text(statement))
    async with sqlite_db.service_context("test: count") as session:
        count = (await session.exec(sa.text("SELECT count(*) FROM audit_logs"))).scalar_one()
    assert count == 1
