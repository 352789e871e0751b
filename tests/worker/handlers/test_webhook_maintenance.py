"""The webhook cron jobs on PostgreSQL: the sweep disables only endpoints failing for the whole
window and audits it; pruning removes only deliveries past retention."""

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from forgestack_db.database import Database
from forgestack_db.models import AuditLog, WebhookDelivery, WebhookEndpoint
from forgestack_shared.settings import Settings, get_settings
from forgestack_worker.handlers.webhook_maintenance import (
    prune_webhook_deliveries,
    sweep_failing_webhook_endpoints,
)
from forgestack_worker.resources import RESOURCES_KEY, close_resources, open_resources
from sqlmodel import select

from tests.db.helpers import make_org
from tests.fixtures_db import PgTestDatabase
from tests.worker.handlers.webhook_fixtures import days_ago, make_delivery, make_endpoint, reload


@pytest.fixture
async def ctx(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, pg_database: PgTestDatabase
) -> AsyncIterator[dict[str, Any]]:
    monkeypatch.setenv("DATABASE_URL", pg_database.app_url)
    monkeypatch.setenv("WEBHOOK_DISABLE_AFTER_S", str(5 * 86400))
    monkeypatch.setenv("WEBHOOK_DELIVERY_RETENTION_DAYS", "30")
    get_settings.cache_clear()
    res = await open_resources(get_settings())
    try:
        yield {RESOURCES_KEY: res}
    finally:
        await close_resources(res)


async def test_the_sweep_disables_endpoints_failing_for_the_whole_window(
    ctx: dict[str, Any], app_db: Database
) -> None:
    org = await make_org(app_db)
    stale = await make_endpoint(app_db, org, "https://a.example.com/", failing_since=days_ago(5.1))
    recent = await make_endpoint(app_db, org, "https://b.example.com/", failing_since=days_ago(4))
    healthy = await make_endpoint(app_db, org, "https://c.example.com/")
    assert await sweep_failing_webhook_endpoints(ctx) == 1
    swept: WebhookEndpoint = await reload(app_db, stale)
    assert not swept.enabled and "every delivery failed" in (swept.disabled_reason or "")
    assert (await reload(app_db, recent)).enabled and (await reload(app_db, healthy)).enabled
    async with app_db.tenant_context(org) as session:
        events = (await session.exec(select(AuditLog).where(AuditLog.org_id == org))).all()
    assert [(e.action, e.resource_id) for e in events] == [
        ("webhook_endpoint.disabled", str(stale.id))
    ]
    assert await sweep_failing_webhook_endpoints(ctx) == 0, "already disabled: no second event"


async def test_pruning_removes_only_deliveries_past_retention(
    ctx: dict[str, Any], app_db: Database
) -> None:
    org = await make_org(app_db)
    endpoint = await make_endpoint(app_db, org, "https://a.example.com/")
    old, new = await make_delivery(app_db, endpoint), await make_delivery(app_db, endpoint)
    async with app_db.tenant_context(org) as session:
        row = (
            await session.exec(select(WebhookDelivery).where(WebhookDelivery.id == old.id))
        ).one()
        row.created_at = days_ago(30) - timedelta(minutes=1)
        session.add(row)
    assert await prune_webhook_deliveries(ctx) >= 1
    async with app_db.tenant_context(org) as session:
        left = (
            await session.exec(select(WebhookDelivery.id).where(WebhookDelivery.org_id == org))
        ).all()
    assert left == [new.id]
