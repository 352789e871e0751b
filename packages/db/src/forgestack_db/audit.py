"""Writing and reading the audit log. Writes are idempotent on `event_id`; reads page by keyset
(`occurred_at`, `id`) so a page is one index range scan however deep the caller goes."""

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .models import AuditLog

MAX_PAGE = 200


class InvalidCursorError(ValueError):
    """The pagination cursor was not produced by `list_audit_events` (tampered or truncated)."""


@dataclass(frozen=True, slots=True)
class AuditQuery:
    action: str | None = None
    resource_type: str | None = None
    actor_id: str | None = None
    occurred_from: datetime | None = None
    """Inclusive."""
    occurred_to: datetime | None = None
    """Exclusive, so consecutive ranges never count an event twice."""
    cursor: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[AuditLog]
    next_cursor: str | None


async def stored_event_org(session: AsyncSession, event_id: uuid.UUID) -> uuid.UUID | None:
    """The organisation an already stored event belongs to (None: platform-level or absent)."""
    result = await session.exec(select(AuditLog.org_id).where(AuditLog.event_id == event_id))
    return result.first()


async def insert_audit_event(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Inserts one event; False when its `event_id` is already stored (a retried or duplicated job)."""
    dialect = session.bind.dialect.name if session.bind else ""
    statement: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        statement = postgresql.insert(AuditLog).values(**values)
    elif dialect == "sqlite":
        statement = sqlite.insert(AuditLog).values(**values)
    else:
        raise RuntimeError(f"no idempotent insert for dialect {dialect!r}")
    statement = statement.on_conflict_do_nothing(index_elements=["event_id"])
    result = await session.exec(statement)
    return bool(result.rowcount)


async def list_audit_events(
    session: AsyncSession, org_id: uuid.UUID | None, query: AuditQuery
) -> AuditPage:
    """Newest first; `org_id` None lists platform-level events. Filters on `org_id` explicitly as
    well as through RLS, because SQLite has no RLS."""
    limit = max(1, min(query.limit, MAX_PAGE))
    own = col(AuditLog.org_id).is_(None) if org_id is None else col(AuditLog.org_id) == org_id
    statement = select(AuditLog).where(own)
    for column, value in (
        (AuditLog.action, query.action),
        (AuditLog.resource_type, query.resource_type),
        (AuditLog.actor_id, query.actor_id),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if query.occurred_from is not None:
        statement = statement.where(col(AuditLog.occurred_at) >= query.occurred_from)
    if query.occurred_to is not None:
        statement = statement.where(col(AuditLog.occurred_at) < query.occurred_to)
    if query.cursor is not None:
        after_time, after_id = decode_cursor(query.cursor)
        statement = statement.where(
            sa.or_(
                col(AuditLog.occurred_at) < after_time,
                sa.and_(col(AuditLog.occurred_at) == after_time, col(AuditLog.id) < after_id),
            )
        )
    statement = statement.order_by(col(AuditLog.occurred_at).desc(), col(AuditLog.id).desc())
    rows = list((await session.exec(statement.limit(limit + 1))).all())
    events = rows[:limit]
    more = len(rows) > limit
    return AuditPage(events=events, next_cursor=encode_cursor(events[-1]) if more else None)


def encode_cursor(event: AuditLog) -> str:
    raw = json.dumps({"t": event.occurred_at.isoformat(), "id": event.id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        when = datetime.fromisoformat(data["t"])
        event_id = data["id"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidCursorError("invalid cursor") from exc
    if when.tzinfo is None or not isinstance(event_id, int):
        raise InvalidCursorError("invalid cursor")
    return when, event_id
