"""Row-level security on the webhook tables, as the application login: no WHERE clause lets one
organisation read or write another's endpoints or deliveries; no context sees nothing."""

import pytest
import sqlalchemy as sa
from forgestack_db.database import Database
from forgestack_db.models import WebhookDelivery, WebhookEndpoint
from forgestack_shared.webhook_signing import new_secret
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from tests.db.helpers import make_org
from tests.worker.handlers.webhook_fixtures import make_delivery, make_endpoint


async def test_a_tenant_sees_and_changes_only_its_own_webhook_rows(app_db: Database) -> None:
    org_a, org_b = await make_org(app_db), await make_org(app_db)
    for org in (org_a, org_b):
        await make_delivery(app_db, await make_endpoint(app_db, org, "https://x.example.com/"))
    async with app_db.tenant_context(org_a) as session:
        endpoints = (await session.exec(select(WebhookEndpoint.org_id))).all()
        deliveries = (await session.exec(select(WebhookDelivery.org_id))).all()
        updated = await session.exec(sa.update(WebhookEndpoint).values(description="mine"))
        deleted = await session.exec(sa.delete(WebhookDelivery))
    assert endpoints == [org_a] and deliveries == [org_a]
    assert updated.rowcount == 1 and deleted.rowcount == 1
    async with app_db.tenant_context(org_b) as session:
        assert (await session.exec(select(WebhookEndpoint.description))).all() == [None]
        assert len((await session.exec(select(WebhookDelivery))).all()) == 1


async def test_writing_a_row_for_another_tenant_is_rejected(app_db: Database) -> None:
    org_a, org_b = await make_org(app_db), await make_org(app_db)
    with pytest.raises(DBAPIError, match="row-level security"):
        async with app_db.tenant_context(org_a) as session:
            session.add(
                WebhookEndpoint(org_id=org_b, url="https://x.example.com/", secret=new_secret())
            )


async def test_no_context_sees_no_webhook_rows(app_db: Database) -> None:
    org = await make_org(app_db)
    await make_delivery(app_db, await make_endpoint(app_db, org, "https://x.example.com/"))
    async with app_db.engine.connect() as conn:
        for table in ("webhook_endpoints", "webhook_deliveries"):
            count = (await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one()
            assert count == 0, table
