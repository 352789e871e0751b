"""The organisation's webhook endpoints and their delivery log, newest first, with a delivery's
request, answer and error, and a confirmed retry for owners. Read through the same tenant context
and models as the /api/v1/webhooks routes, so no page has a field for a signing secret and
another organisation's delivery is a 404 like a missing one.

Endpoints belong to organisations: the operator key (no organisation) gets a page saying so, as
the API answers it with 403."""

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from forgestack_db.models import DeliveryStatus
from forgestack_db.webhooks import (
    DeliveryQuery,
    InvalidDeliveryCursorError,
    get_delivery,
    get_endpoint,
    list_deliveries,
    list_endpoints,
)

from ..access import require_role
from ..auth import Role
from ..guarded_database import GuardedDatabase
from ..lifespan import resources_of
from ..routes.webhook_models import WebhookDeliveryInfo, WebhookEndpointInfo
from ..tenant import TenantPrincipal
from ..webhook_retry import retry_delivery
from .deps import QueuesDep, UserDep
from .operate import back_with, checked_form, confirm_page
from .rendering import DashboardRoute, page
from .session import DashboardUser

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)
PAGE_SIZE = 25
RETRY_CONFIRM = "Send this delivery again, on a fresh retry schedule?"


def _tenant(user: DashboardUser) -> TenantPrincipal | None:
    org_id = user.principal.org_id
    return None if org_id is None else TenantPrincipal(principal=user.principal, org_id=org_id)


def _require_tenant(user: DashboardUser) -> TenantPrincipal:
    tenant = _tenant(user)
    if tenant is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "webhook deliveries belong to an organisation's key"
        )
    return tenant


def _db(request: Request) -> GuardedDatabase:
    return GuardedDatabase(resources_of(request).db)


@router.get("/webhooks")
async def endpoints_page(request: Request, user: UserDep) -> Response:
    tenant = _tenant(user)
    endpoints: list[WebhookEndpointInfo] = []
    if tenant is not None:
        async with _db(request).tenant_context(tenant.org_id, tenant.user_id, tenant.role) as s:
            endpoints = [WebhookEndpointInfo.of(e) for e in await list_endpoints(s, tenant.org_id)]
    return page(request, "webhooks.html", {"user": user, "tenant": tenant, "endpoints": endpoints})


@router.get("/webhooks/deliveries")
async def deliveries_page(
    request: Request,
    user: UserDep,
    endpoint: uuid.UUID | None = None,
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    tenant = _require_tenant(user)
    query = DeliveryQuery(
        endpoint_id=endpoint,
        status=delivery_status.value if delivery_status else None,
        cursor=cursor,
        limit=PAGE_SIZE,
    )
    async with _db(request).tenant_context(tenant.org_id, tenant.user_id, tenant.role) as s:
        shown = None if endpoint is None else await get_endpoint(s, tenant.org_id, endpoint)
        if endpoint is not None and shown is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "webhook endpoint not found")
        try:
            found = await list_deliveries(s, tenant.org_id, query)
        except InvalidDeliveryCursorError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    context = {
        "user": user,
        "endpoint": None if shown is None else WebhookEndpointInfo.of(shown),
        "status": delivery_status.value if delivery_status else "",
        "statuses": [s.value for s in DeliveryStatus],
        "deliveries": [WebhookDeliveryInfo.of(d) for d in found.deliveries],
        "next_cursor": found.next_cursor,
        "first_page": cursor is None,
    }
    return page(request, "deliveries.html", context)


@router.get("/webhooks/deliveries/{delivery_id}")
async def delivery_page(
    request: Request,
    delivery_id: uuid.UUID,
    user: UserDep,
    message: Annotated[str, Query(alias="msg", max_length=300)] = "",
) -> Response:
    tenant = _require_tenant(user)
    async with _db(request).tenant_context(tenant.org_id, tenant.user_id, tenant.role) as s:
        delivery = await get_delivery(s, tenant.org_id, delivery_id)
        if delivery is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "webhook delivery not found")
        endpoint = await get_endpoint(s, tenant.org_id, delivery.endpoint_id)
    context = {
        "user": user,
        "delivery": WebhookDeliveryInfo.of(delivery),
        "payload": _json_or_text(delivery.payload),
        "endpoint": None if endpoint is None else WebhookEndpointInfo.of(endpoint),
        "can_retry": user.principal.at_least(Role.OWNER)
        and delivery.status != DeliveryStatus.PENDING.value,
        "retry_confirm": RETRY_CONFIRM,
        "message": message,
    }
    return page(request, "delivery.html", context)


@router.post("/webhooks/deliveries/{delivery_id}/retry")
async def retry(
    request: Request, delivery_id: uuid.UUID, user: UserDep, queues: QueuesDep
) -> Response:
    form = await checked_form(request, user)
    tenant = _require_tenant(user)
    require_role(user.principal, Role.OWNER, "retrying a webhook delivery")
    if form.get("confirmed") != "yes":
        return confirm_page(request, user, RETRY_CONFIRM, form)
    settings = resources_of(request).settings
    await retry_delivery(delivery_id, tenant, _db(request), queues, settings)
    return back_with(f"/dashboard/webhooks/deliveries/{delivery_id}", "The delivery is pending.")


def _json_or_text(body: str) -> Any:
    """The payload as JSON (so the page masks secret-named keys), or as sent when it is not."""
    try:
        return json.loads(body)
    except ValueError:
        return body
