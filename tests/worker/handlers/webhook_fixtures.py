"""Builders for the webhook tests: endpoints and deliveries written as the application login
(PostgreSQL, RLS on), jobs enqueued as the API does, and the real worker draining them."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from forgestack_db.database import Database
from forgestack_db.models import WebhookDelivery, WebhookEndpoint
from forgestack_queue.producer import AddResult, Queue
from forgestack_queue.testing import run_burst_worker
from forgestack_shared.catalog import WEBHOOK_DELIVERY, webhook_job_options
from forgestack_shared.jobs.webhook_delivery import WebhookDeliveryData
from forgestack_shared.ssrf import Resolver
from forgestack_shared.webhook_signing import new_secret
from forgestack_worker.registry import HANDLERS
from forgestack_worker.resources import RESOURCES_KEY, WorkerResources
from forgestack_worker.settings import on_shutdown, on_startup
from redis.asyncio import Redis
from sqlmodel import select


async def make_endpoint(
    db: Database, org_id: uuid.UUID, url: str, **fields: Any
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(org_id=org_id, url=url, secret=new_secret(), **fields)
    async with db.tenant_context(org_id) as session:
        session.add(endpoint)
    return endpoint


async def make_delivery(
    db: Database, endpoint: WebhookEndpoint, event_type: str = "invoice.paid"
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        org_id=endpoint.org_id,
        endpoint_id=endpoint.id,
        event_id=f"msg_{uuid.uuid4().hex}",
        event_type=event_type,
        payload='{"type":"invoice.paid","timestamp":"2026-01-01T00:00:00Z","data":{"n":1}}',
    )
    async with db.tenant_context(endpoint.org_id) as session:
        session.add(delivery)
    return delivery


async def enqueue(
    redis: Redis, prefix: str, delivery: WebhookDelivery, schedule_s: list[int]
) -> AddResult:
    data = WebhookDeliveryData(org_id=delivery.org_id, delivery_id=delivery.id)
    options = webhook_job_options(schedule_s, f"webhook-delivery:{delivery.id}")
    queue = Queue(redis, WEBHOOK_DELIVERY.name.value, prefix=prefix)
    return await queue.add(
        data.model_dump(mode="json"), options.merged_over(WEBHOOK_DELIVERY.defaults)
    )


async def drain(redis_url: str, prefix: str, resolver: Resolver | None = None) -> None:
    """The worker as deployed (on_startup opens the guarded database and the HTTP client)."""

    async def startup(ctx: dict[str, Any]) -> None:
        await on_startup(ctx)
        if resolver is not None:
            res = ctx[RESOURCES_KEY]
            assert isinstance(res, WorkerResources)
            res.resolver = resolver

    await run_burst_worker(
        redis_url, HANDLERS, prefix=prefix, on_startup=startup, on_shutdown=on_shutdown
    )


async def reload(db: Database, row: WebhookDelivery | WebhookEndpoint) -> Any:
    model = type(row)
    async with db.tenant_context(row.org_id) as session:
        return (await session.exec(select(model).where(model.id == row.id))).one()


def sequence_resolver(*answers: list[str]) -> tuple[Resolver, list[str]]:
    """Answers each lookup with the next list (the last repeats); records the hosts asked."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers[min(len(asked), len(answers)) - 1]

    return resolve, asked


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)
