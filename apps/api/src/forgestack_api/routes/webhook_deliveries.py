"""Events and the delivery log: send an event to every subscribed endpoint (one bulk add), read
deliveries with filters and a cursor, and retry one. Own organisation only."""

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from forgestack_db.models import DeliveryStatus
from forgestack_db.webhooks import (
    MAX_PAGE,
    DeliveryQuery,
    InvalidDeliveryCursorError,
    get_delivery,
    list_deliveries,
    subscribed_endpoints,
)
from pydantic import BaseModel, Field, field_validator

from ..deps import JobsDep, SettingsDep
from ..tenant import DatabaseDep, TenantDep, TenantManagerDep
from ..webhook_retry import retry_delivery
from ..webhooks import (
    enqueue_deliveries,
    event_payload,
    forget_deliveries,
    new_delivery,
    new_event_id,
)
from .webhook_models import EventType, WebhookDeliveryInfo, WebhookDeliveryPage

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

MAX_EVENT_BYTES = 256 * 1024


class EventRequest(BaseModel):
    type: EventType
    data: dict[str, Any]

    @field_validator("data")
    @classmethod
    def _bounded(cls, data: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(data).encode())
        if size > MAX_EVENT_BYTES:
            raise ValueError(f"data takes {size} bytes; the limit is {MAX_EVENT_BYTES}")
        return data


class EventAccepted(BaseModel):
    event_id: str = Field(description="The `webhook-id` every endpoint receives.")
    delivery_ids: list[uuid.UUID] = Field(description="One per subscribed, enabled endpoint.")


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send an event to every enabled endpoint subscribed to its type",
    responses={503: {"description": "Redis is unreachable: nothing was sent or recorded."}},
)
async def send_event(
    body: EventRequest,
    tenant: TenantManagerDep,
    db: DatabaseDep,
    queues: JobsDep,
    settings: SettingsDep,
) -> EventAccepted:
    event_id = new_event_id()
    payload = event_payload(body.type, body.data)
    async with db.tenant_context(tenant.org_id, tenant.user_id, tenant.role) as session:
        endpoints = await subscribed_endpoints(session, tenant.org_id, body.type)
        pairs = [(new_delivery(e, event_id, body.type, payload), e) for e in endpoints]
        session.add_all([d for d, _ in pairs])
    if pairs:
        try:
            await enqueue_deliveries(queues, tenant.org_id, pairs, settings)
        except Exception:
            await forget_deliveries(db, tenant.org_id, [d.id for d, _ in pairs])
            raise
    return EventAccepted(event_id=event_id, delivery_ids=[d.id for d, _ in pairs])


@router.get("/deliveries", summary="The organisation's deliveries, newest first")
async def list_all(
    tenant: TenantDep,
    db: DatabaseDep,
    endpoint_id: uuid.UUID | None = None,
    event_type: Annotated[str | None, Query(max_length=200)] = None,
    event_id: Annotated[str | None, Query(max_length=100)] = None,
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> WebhookDeliveryPage:
    query = DeliveryQuery(
        endpoint_id=endpoint_id,
        event_type=event_type,
        event_id=event_id,
        status=delivery_status.value if delivery_status else None,
        cursor=cursor,
        limit=limit,
    )
    try:
        async with db.tenant_context(tenant.org_id, tenant.user_id, tenant.role) as session:
            page = await list_deliveries(session, tenant.org_id, query)
    except InvalidDeliveryCursorError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    return WebhookDeliveryPage(
        deliveries=[WebhookDeliveryInfo.of(d) for d in page.deliveries],
        next_cursor=page.next_cursor,
    )


@router.get("/deliveries/{delivery_id}", summary="One delivery and its latest attempt")
async def get_one(
    delivery_id: uuid.UUID, tenant: TenantDep, db: DatabaseDep
) -> WebhookDeliveryInfo:
    async with db.tenant_context(tenant.org_id, tenant.user_id, tenant.role) as session:
        delivery = await get_delivery(session, tenant.org_id, delivery_id)
    if delivery is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "webhook delivery not found")
    return WebhookDeliveryInfo.of(delivery)


@router.post(
    "/deliveries/{delivery_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a finished delivery again, on a fresh retry schedule",
    responses={409: {"description": "Still pending, or its endpoint is disabled."}},
)
async def retry(
    delivery_id: uuid.UUID,
    tenant: TenantManagerDep,
    db: DatabaseDep,
    queues: JobsDep,
    settings: SettingsDep,
) -> WebhookDeliveryInfo:
    delivery = await retry_delivery(delivery_id, tenant, db, queues, settings)
    return WebhookDeliveryInfo.of(delivery)
