"""Sending a finished webhook delivery again: the API's retry route and the dashboard's button
both do it here, so the row and its job move together (the row back to pending, then a fresh job
on a new retry schedule; when the enqueue fails the row is put back as it was)."""

import uuid

from fastapi import HTTPException, status
from forgestack_db.models import DeliveryStatus, WebhookDelivery
from forgestack_db.webhooks import get_delivery, get_endpoint
from forgestack_shared.settings import Settings

from .guarded_database import GuardedDatabase
from .queue_service import QueueService
from .tenant import TenantPrincipal
from .webhooks import enqueue_deliveries


async def retry_delivery(
    delivery_id: uuid.UUID,
    tenant: TenantPrincipal,
    db: GuardedDatabase,
    queues: QueueService,
    settings: Settings,
) -> WebhookDelivery:
    """404 for a delivery not of the tenant's organisation; 409 while pending or when its
    endpoint is disabled or gone."""
    async with db.tenant_context(tenant.org_id, tenant.user_id, tenant.role) as session:
        delivery = await get_delivery(session, tenant.org_id, delivery_id)
        if delivery is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "webhook delivery not found")
        endpoint = await get_endpoint(session, tenant.org_id, delivery.endpoint_id)
        if delivery.status == DeliveryStatus.PENDING.value:
            raise HTTPException(status.HTTP_409_CONFLICT, "the delivery is still pending")
        if endpoint is None or not endpoint.enabled:
            raise HTTPException(status.HTTP_409_CONFLICT, "the endpoint is disabled")
        previous = delivery.status, delivery.failed_at, delivery.delivered_at
        delivery.status = DeliveryStatus.PENDING.value
        delivery.failed_at = delivery.delivered_at = None
        session.add(delivery)
    try:
        suffix = f":retry:{uuid.uuid4().hex[:12]}"
        await enqueue_deliveries(queues, tenant.org_id, [(delivery, endpoint)], settings, suffix)
    except Exception:
        async with db.tenant_context(tenant.org_id, tenant.user_id, tenant.role) as session:
            delivery.status, delivery.failed_at, delivery.delivered_at = previous
            await session.merge(delivery)
        raise
    return delivery
