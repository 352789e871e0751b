"""Webhook endpoints of the caller's organisation: members read, owners (and admins) write. The
signing secret is shown once, when the endpoint is created or its secret rotated."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Response, status
from forgestack_db.models import WebhookEndpoint
from forgestack_db.webhooks import get_endpoint, list_endpoints
from forgestack_shared.webhook_signing import new_secret
from pydantic import BaseModel, Field, StringConstraints

from ..audit import AuditDep
from ..deps import JobsDep, SettingsDep
from ..tenant import DatabaseDep, TenantDep, TenantManagerDep, TenantPrincipal
from ..webhooks import (
    ResolverDep,
    check_endpoint_url,
    enqueue_deliveries,
    event_payload,
    forget_deliveries,
    new_delivery,
    new_event_id,
)
from .webhook_models import (
    EventType,
    WebhookDeliveryInfo,
    WebhookEndpointCreated,
    WebhookEndpointInfo,
)

router = APIRouter(prefix="/webhooks/endpoints", tags=["webhooks"])

Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Schedule = Annotated[
    list[Annotated[int, Field(ge=0, le=7 * 86400)]], Field(min_length=1, max_length=50)
]
TEST_EVENT = "webhook.test"


class EndpointCreateRequest(BaseModel):
    url: Url
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    event_types: list[EventType] = Field(
        default_factory=list, max_length=100, description="Empty: every event type."
    )
    enabled: bool = True
    retry_schedule_s: Schedule | None = Field(
        default=None,
        description="Seconds before retry 1, 2, ...; default WEBHOOK_RETRY_SCHEDULE_S.",
    )


class EndpointUpdateRequest(BaseModel):
    url: Url | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    event_types: list[EventType] | None = Field(default=None, max_length=100)
    enabled: bool | None = Field(default=None, description="true re-enables a disabled endpoint.")
    retry_schedule_s: Schedule | None = None


class RotateRequest(BaseModel):
    previous_valid_s: int = Field(
        default=86400,
        ge=0,
        le=7 * 86400,
        description="How long deliveries also carry a signature with the old secret.",
    )


async def _owned(
    db: DatabaseDep, tenant: TenantPrincipal, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    async with db.tenant_context(tenant.org_id, tenant.user_id, tenant.role) as session:
        endpoint = await get_endpoint(session, tenant.org_id, endpoint_id)
    if endpoint is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "webhook endpoint not found")
    return endpoint


@router.get("", summary="The organisation's webhook endpoints (no secrets)")
async def list_all(tenant: TenantDep, db: DatabaseDep) -> list[WebhookEndpointInfo]:
    async with db.tenant_context(tenant.org_id, tenant.user_id, tenant.role) as session:
        return [WebhookEndpointInfo.of(e) for e in await list_endpoints(session, tenant.org_id)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an endpoint; the answer holds its signing secret, shown this once",
    responses={422: {"description": "Invalid body, or a URL the SSRF guard refuses."}},
)
async def create(
    body: EndpointCreateRequest,
    tenant: TenantManagerDep,
    db: DatabaseDep,
    settings: SettingsDep,
    resolver: ResolverDep,
    audit: AuditDep,
) -> WebhookEndpointCreated:
    await check_endpoint_url(body.url, settings, resolver)
    endpoint = WebhookEndpoint(org_id=tenant.org_id, secret=new_secret(), **body.model_dump())
    async with db.tenant_context(tenant.org_id, tenant.user_id, tenant.role) as session:
        session.add(endpoint)
    await audit.record("webhook_endpoint.created", "webhook_endpoint", str(endpoint.id))
    return WebhookEndpointCreated.of(endpoint, endpoint.secret)


@router.get("/{endpoint_id}", summary="One endpoint (no secret)")
async def get_one(
    endpoint_id: uuid.UUID, tenant: TenantDep, db: DatabaseDep
) -> WebhookEndpointInfo:
    return WebhookEndpointInfo.of(await _owned(db, tenant, endpoint_id))


@router.patch(
    "/{endpoint_id}",
    summary="Change an endpoint; enabling it again clears the disable",
    responses={400: {"description": "A field that cannot be cleared was sent as null."}},
)
async def update(
    endpoint_id: uuid.UUID,
    body: EndpointUpdateRequest,
    tenant: TenantManagerDep,
    db: DatabaseDep,
    settings: SettingsDep,
    resolver: ResolverDep,
    audit: AuditDep,
) -> WebhookEndpointInfo:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("url") is not None:
        await check_endpoint_url(changes["url"], settings, resolver)
    for name in ("url", "enabled"):  # NOT NULL columns: null is not "unchanged"
        if name in changes and changes[name] is None:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{name} cannot be null")
    async with db.tenant_context(tenant.org_id, tenant.user_id, tenant.role) as session:
        endpoint = await get_endpoint(session, tenant.org_id, endpoint_id)
        if endpoint is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "webhook endpoint not found")
        for name, value in changes.items():
            setattr(endpoint, name, [] if name == "event_types" and value is None else value)
        if changes.get("enabled") is True:
            endpoint.disabled_reason = endpoint.disabled_at = endpoint.failing_since = None
        if changes.get("enabled") is False:
            endpoint.disabled_reason, endpoint.disabled_at = "disabled by its owner", _now()
        endpoint.updated_at = _now()
        session.add(endpoint)
    await audit.record(
        "webhook_endpoint.updated",
        "webhook_endpoint",
        str(endpoint_id),
        metadata={"fields": sorted(changes)},
    )
    return WebhookEndpointInfo.of(endpoint)


@router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an endpoint and its delivery log; its pending deliveries fail visibly",
)
async def remove(
    endpoint_id: uuid.UUID, tenant: TenantManagerDep, db: DatabaseDep, audit: AuditDep
) -> Response:
    async with db.tenant_context(tenant.org_id, tenant.user_id, tenant.role) as session:
        endpoint = await get_endpoint(session, tenant.org_id, endpoint_id)
        if endpoint is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "webhook endpoint not found")
        await session.delete(endpoint)  # its deliveries go by ON DELETE CASCADE
    await audit.record("webhook_endpoint.deleted", "webhook_endpoint", str(endpoint_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{endpoint_id}/rotate-secret",
    summary="New signing secret, shown this once; the old one keeps signing for a while",
)
async def rotate_secret(
    endpoint_id: uuid.UUID,
    tenant: TenantManagerDep,
    db: DatabaseDep,
    audit: AuditDep,
    body: RotateRequest | None = None,
) -> WebhookEndpointCreated:
    keep_s = (body or RotateRequest()).previous_valid_s
    async with db.tenant_context(tenant.org_id, tenant.user_id, tenant.role) as session:
        endpoint = await get_endpoint(session, tenant.org_id, endpoint_id)
        if endpoint is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "webhook endpoint not found")
        endpoint.previous_secret = endpoint.secret if keep_s else None
        endpoint.previous_secret_expires_at = _now() + timedelta(seconds=keep_s) if keep_s else None
        endpoint.secret = new_secret()
        endpoint.updated_at = _now()
        session.add(endpoint)
    await audit.record("webhook_endpoint.secret_rotated", "webhook_endpoint", str(endpoint_id))
    return WebhookEndpointCreated.of(endpoint, endpoint.secret)


@router.post(
    "/{endpoint_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a `webhook.test` event to this endpoint, whatever it subscribes to",
)
async def send_test(
    endpoint_id: uuid.UUID,
    tenant: TenantManagerDep,
    db: DatabaseDep,
    queues: JobsDep,
    settings: SettingsDep,
) -> WebhookDeliveryInfo:
    endpoint = await _owned(db, tenant, endpoint_id)
    if not endpoint.enabled:
        raise HTTPException(status.HTTP_409_CONFLICT, "the endpoint is disabled")
    payload = event_payload(TEST_EVENT, {"endpoint_id": str(endpoint.id)})
    delivery = new_delivery(endpoint, new_event_id(), TEST_EVENT, payload)
    async with db.tenant_context(tenant.org_id, tenant.user_id, tenant.role) as session:
        session.add(delivery)
    try:
        await enqueue_deliveries(queues, tenant.org_id, [(delivery, endpoint)], settings)
    except Exception:
        await forget_deliveries(db, tenant.org_id, [delivery.id])
        raise
    return WebhookDeliveryInfo.of(delivery)


def _now() -> datetime:
    return datetime.now(UTC)
