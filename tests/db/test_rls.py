"""Row-level security as the application login: each tenant sees and writes only its own rows, a
transaction without context sees and writes nothing, and context never outlives its transaction."""

import uuid

import pytest
import sqlalchemy as sa
from forgestack_db.api_keys import issue_api_key
from forgestack_db.database import Database
from forgestack_db.models import ApiKey, ApiKeyRole, AuditLog, Organisation
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from tests.db.helpers import add_audit, audit_values, make_org
from tests.fixtures_db import PgTestDatabase


async def _seed(db: Database) -> tuple[uuid.UUID, uuid.UUID]:
    org_a, org_b = await make_org(db), await make_org(db)
    for org in (org_a, org_b):
        async with db.service_context("test setup: key") as session:
            await issue_api_key(session, org, ApiKeyRole.MEMBER, "seed")
        await add_audit(db, org)
    return org_a, org_b


async def test_a_tenant_sees_only_its_own_rows(app_db: Database) -> None:
    org_a, org_b = await _seed(app_db)
    async with app_db.tenant_context(org_a, "user-a", ApiKeyRole.MEMBER) as session:
        orgs = (await session.exec(select(Organisation.id))).all()
        keys = (await session.exec(select(ApiKey.org_id))).all()
        events = (await session.exec(select(AuditLog.org_id))).all()
        # No WHERE clause: only the policies stand between org A and org B here.
        assert orgs == [org_a]
        assert set(keys) == {org_a}
        assert set(events) == {org_a}
        assert (
            await session.exec(select(Organisation).where(Organisation.id == org_b))
        ).first() is None


async def test_writing_another_tenants_row_is_rejected(app_db: Database) -> None:
    org_a, org_b = await _seed(app_db)
    with pytest.raises(DBAPIError, match="row-level security"):
        async with app_db.tenant_context(org_a, "user-a", ApiKeyRole.ADMIN) as session:
            await issue_api_key(session, org_b, ApiKeyRole.ADMIN, "smuggled")
    async with app_db.tenant_context(org_a) as session:
        # Updating B's rows is not an error; it just finds nothing to update.
        result = await session.exec(sa.update(ApiKey).values(name="renamed"))
        assert result.rowcount == 1
    async with app_db.service_context("test: check") as session:
        names = (await session.exec(select(ApiKey.name).where(ApiKey.org_id == org_b))).all()
        assert names == ["seed"]


async def test_tenants_cannot_write_audit_events_directly(app_db: Database) -> None:
    org_a = await make_org(app_db)
    with pytest.raises(DBAPIError, match="row-level security"):
        async with app_db.tenant_context(org_a) as session:
            await session.exec(sa.insert(AuditLog).values(**audit_values(org_a)))


async def test_no_context_sees_nothing_and_writes_nothing(app_db: Database) -> None:
    await _seed(app_db)
    async with app_db.engine.connect() as conn:
        for table in ("organisations", "api_keys", "audit_logs"):
            count = (await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one()
            assert count == 0, table
    async with app_db.engine.connect() as conn:
        with pytest.raises(DBAPIError, match="row-level security"):
            await conn.execute(
                sa.text("INSERT INTO organisations (id, name, created_at) VALUES (:id, :n, now())"),
                {"id": uuid.uuid4(), "n": "rogue"},
            )
    async with app_db.engine.connect() as conn:
        result = await conn.execute(sa.text("UPDATE api_keys SET name = 'x'"))
        assert result.rowcount == 0  # type: ignore[attr-defined]


async def test_context_does_not_leak_across_transactions_on_one_connection(
    pg_database: PgTestDatabase,
) -> None:
    db = Database.from_url(pg_database.app_url, pool_size=1)
    try:
        org_a, org_b = await _seed(db)
        pids = set()
        async with db.tenant_context(org_a, "user-a", ApiKeyRole.OWNER) as session:
            pids.add((await session.exec(sa.text("SELECT pg_backend_pid()"))).scalar_one())
            assert (await session.exec(select(Organisation.id))).all() == [org_a]
        async with db.engine.connect() as conn:
            pids.add((await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())
            leftover = await conn.execute(
                sa.text(
                    "SELECT current_setting('app.current_org_id', true),"
                    " current_setting('app.service_context', true),"
                    " (SELECT count(*) FROM organisations)"
                )
            )
            assert tuple(leftover.one()) in {("", "", 0), (None, None, 0)}
        async with db.tenant_context(org_b) as session:
            pids.add((await session.exec(sa.text("SELECT pg_backend_pid()"))).scalar_one())
            assert (await session.exec(select(Organisation.id))).all() == [org_b]
        assert len(pids) == 1, "the three transactions should share the pooled connection"
    finally:
        await db.dispose()


async def test_a_failed_transaction_does_not_leak_context(pg_database: PgTestDatabase) -> None:
    db = Database.from_url(pg_database.app_url, pool_size=1)
    try:
        org_a = await make_org(db)
        with pytest.raises(RuntimeError, match="boom"):
            async with db.tenant_context(org_a):
                raise RuntimeError("boom")
        async with db.engine.connect() as conn:
            count = (await conn.execute(sa.text("SELECT count(*) FROM organisations"))).scalar_one()
            assert count == 0
    finally:
        await db.dispose()


async def test_the_service_context_crosses_tenants_and_needs_a_reason(app_db: Database) -> None:
    org_a, org_b = await _seed(app_db)
    async with app_db.service_context("test: cross-tenant read") as session:
        orgs = set((await session.exec(select(Organisation.id))).all())
        assert {org_a, org_b} <= orgs
    with pytest.raises(ValueError, match="reason"):
        async with app_db.service_context("  "):
            pass
