"""What the webhook routes share: the SSRF check of a tenant's URL (a 422 with the reason), the
event payload, and enqueueing deliveries so that a delivery row never waits without its job."""

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends
from forgestack_db.models import WebhookDelivery, WebhookEndpoint
from forgestack_shared.catalog import WEBHOOK_DELIVERY, webhook_job_options
from forgestack_shared.jobs.webhook_delivery import WebhookDeliveryData
from forgestack_shared.settings import Settings
from forgestack_shared.ssrf import (
    BlockedUrlError,
    Resolver,
    check_url,
    parse_allowlist,
    system_resolver,
)
from sqlmodel import col, delete

from .guarded_database import GuardedDatabase
from .queue_service import QueueService
from .webhook_errors import WebhookUrlRefusedError


def webhook_resolver() -> Resolver:
    """The DNS resolver the URL check uses; tests override this dependency to play DNS."""
    return system_resolver


ResolverDep = Annotated[Resolver, Depends(webhook_resolver)]


async def check_endpoint_url(url: str, settings: Settings, resolver: Resolver) -> None:
    try:
        await check_url(url, parse_allowlist(settings.webhook_allowed_cidrs), resolver)
    except BlockedUrlError as exc:
        raise WebhookUrlRefusedError(str(exc)) from exc


def new_event_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def event_payload(event_type: str, data: dict[str, Any], at: datetime | None = None) -> str:
    """The exact body every endpoint receives, on every retry: the Standard Webhooks envelope."""
    when = (at or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"type": event_type, "timestamp": when, "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def new_delivery(
    endpoint: WebhookEndpoint, event_id: str, event_type: str, payload: str
) -> WebhookDelivery:
    return WebhookDelivery(
        org_id=endpoint.org_id,
        endpoint_id=endpoint.id,
        event_id=event_id,
        event_type=event_type,
        payload=payload,
    )


def schedule_of(endpoint: WebhookEndpoint, settings: Settings) -> list[int]:
    return endpoint.retry_schedule_s or settings.webhook_retry_schedule


async def enqueue_deliveries(
    queues: QueueService,
    org_id: uuid.UUID,
    pairs: Sequence[tuple[WebhookDelivery, WebhookEndpoint]],
    settings: Settings,
    job_suffix: str = "",
) -> None:
    """One bulk add for all the (committed) deliveries; each job carries ids, never a secret."""
    jobs = [
        (
            WebhookDeliveryData(org_id=org_id, delivery_id=d.id).model_dump(mode="json"),
            webhook_job_options(
                schedule_of(e, settings), f"{WEBHOOK_DELIVERY.name.value}:{d.id}{job_suffix}"
            ).model_dump(exclude_unset=True),
        )
        for d, e in pairs
    ]
    await queues.add_bulk_raw(WEBHOOK_DELIVERY.name.value, jobs)


async def forget_deliveries(
    db: GuardedDatabase, org_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> None:
    """Undoes rows whose jobs could not be enqueued, so none is left pending without a job."""
    async with db.tenant_context(org_id) as session:
        await session.exec(delete(WebhookDelivery).where(col(WebhookDelivery.id).in_(ids)))
