"""Reading and maintaining webhook endpoints and deliveries. Every tenant query filters on
`org_id` itself as well as through RLS, because SQLite has no RLS."""

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .audit import insert_audit_event
from .models import WebhookDelivery, WebhookEndpoint

MAX_PAGE = 200


class InvalidDeliveryCursorError(ValueError):
    """The cursor was not produced by `list_deliveries`."""


@dataclass(frozen=True, slots=True)
class DeliveryQuery:
    endpoint_id: uuid.UUID | None = None
    event_type: str | None = None
    event_id: str | None = None
    status: str | None = None
    cursor: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    deliveries: list[WebhookDelivery]
    next_cursor: str | None


async def get_endpoint(
    session: AsyncSession, org_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint | None:
    statement = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.org_id == org_id
    )
    return (await session.exec(statement)).first()


async def list_endpoints(session: AsyncSession, org_id: uuid.UUID) -> list[WebhookEndpoint]:
    statement = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.org_id == org_id)
        .order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))
    )
    return list((await session.exec(statement)).all())


async def subscribed_endpoints(
    session: AsyncSession, org_id: uuid.UUID, event_type: str
) -> list[WebhookEndpoint]:
    """Enabled endpoints that take `event_type`. The type list is matched here, not in SQL, so
    the same code serves JSONB and SQLite's JSON text."""
    statement = select(WebhookEndpoint).where(
        WebhookEndpoint.org_id == org_id, col(WebhookEndpoint.enabled).is_(True)
    )
    endpoints = (await session.exec(statement.order_by(col(WebhookEndpoint.id)))).all()
    return [e for e in endpoints if not e.event_types or event_type in e.event_types]


async def get_delivery(
    session: AsyncSession, org_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery | None:
    statement = select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.org_id == org_id
    )
    return (await session.exec(statement)).first()


async def list_deliveries(
    session: AsyncSession, org_id: uuid.UUID, query: DeliveryQuery
) -> DeliveryPage:
    """Newest first, paged by keyset (`created_at`, `id`)."""
    limit = max(1, min(query.limit, MAX_PAGE))
    statement = select(WebhookDelivery).where(WebhookDelivery.org_id == org_id)
    for column, value in (
        (WebhookDelivery.endpoint_id, query.endpoint_id),
        (WebhookDelivery.event_type, query.event_type),
        (WebhookDelivery.event_id, query.event_id),
        (WebhookDelivery.status, query.status),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if query.cursor is not None:
        after_time, after_id = _decode_cursor(query.cursor)
        created, ident = col(WebhookDelivery.created_at), col(WebhookDelivery.id)
        statement = statement.where(
            sa.or_(created < after_time, sa.and_(created == after_time, ident < after_id))
        )
    statement = statement.order_by(
        col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id).desc()
    )
    rows = list((await session.exec(statement.limit(limit + 1))).all())
    page = rows[:limit]
    more = len(rows) > limit
    return DeliveryPage(deliveries=page, next_cursor=_encode_cursor(page[-1]) if more else None)


async def prune_deliveries(session: AsyncSession, older_than: datetime) -> int:
    """Deletes delivery rows created before `older_than` (any organisation: service context)."""
    result = await session.exec(
        delete(WebhookDelivery).where(col(WebhookDelivery.created_at) < older_than)
    )
    return int(result.rowcount or 0)


async def endpoints_failing_since(session: AsyncSession, before: datetime) -> list[WebhookEndpoint]:
    """Enabled endpoints whose failures started before `before` with no success since."""
    statement = select(WebhookEndpoint).where(
        col(WebhookEndpoint.enabled).is_(True),
        col(WebhookEndpoint.failing_since).is_not(None),
        col(WebhookEndpoint.failing_since) < before,
    )
    return list((await session.exec(statement.with_for_update(skip_locked=True))).all())


def _encode_cursor(delivery: WebhookDelivery) -> str:
    raw = json.dumps({"t": delivery.created_at.isoformat(), "id": str(delivery.id)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        when = datetime.fromisoformat(data["t"])
        ident = uuid.UUID(data["id"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidDeliveryCursorError("invalid cursor") from exc
    if when.tzinfo is None:
        raise InvalidDeliveryCursorError("invalid cursor")
    return when, ident


async def disable_endpoint(
    session: AsyncSession, endpoint: WebhookEndpoint, reason: str, now: datetime
) -> None:
    """Disables and audits in one transaction (a service context: tenants cannot write the audit
    log), so an endpoint is never switched off without a record of why."""
    endpoint.enabled = False
    endpoint.disabled_reason = reason[:500]
    endpoint.disabled_at = now
    endpoint.updated_at = now
    session.add(endpoint)
    await insert_audit_event(
        session,
        {
            "event_id": uuid.uuid4(),
            "org_id": endpoint.org_id,
            "actor_id": "webhook-delivery",
            "actor_type": "system",
            "action": "webhook_endpoint.disabled",
            "resource_type": "webhook_endpoint",
            "resource_id": str(endpoint.id),
            "event_metadata": {
                "reason": reason,
                "url": endpoint.url,
                "failing_since": endpoint.failing_since.isoformat()
                if endpoint.failing_since
                else None,
            },
            "occurred_at": now,
        },
    )


async def load_delivery(
    session: AsyncSession, org_id: uuid.UUID, delivery_id: uuid.UUID
) -> tuple[WebhookDelivery, WebhookEndpoint] | None:
    """A delivery with its endpoint in one round trip (the worker's read before it sends)."""
    statement = (
        select(WebhookDelivery, WebhookEndpoint)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.org_id == org_id)
    )
    row = (await session.exec(statement)).first()
    return None if row is None else (row[0], row[1])


async def record_attempt(
    session: AsyncSession, org_id: uuid.UUID, delivery_id: uuid.UUID, values: dict[str, Any]
) -> None:
    """One UPDATE, no read: the worker writes each attempt's outcome as it happens."""
    await session.exec(
        sa.update(WebhookDelivery)
        .where(col(WebhookDelivery.id) == delivery_id, col(WebhookDelivery.org_id) == org_id)
        .values(**values)
    )


async def track_failure_window(
    session: AsyncSession, org_id: uuid.UUID, endpoint_id: uuid.UUID, delivered: bool, now: datetime
) -> None:
    """One success closes the window; the first failure after a success opens it. Written only
    when it changes, so a healthy endpoint's row is not rewritten on every delivery."""
    failing = col(WebhookEndpoint.failing_since)
    statement = sa.update(WebhookEndpoint).where(
        col(WebhookEndpoint.id) == endpoint_id, col(WebhookEndpoint.org_id) == org_id
    )
    if delivered:
        statement = statement.where(failing.is_not(None)).values(failing_since=None)
    else:
        statement = statement.where(failing.is_(None)).values(failing_since=now)
    await session.exec(statement)
