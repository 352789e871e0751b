"""Small builders shared by the database tests."""

import uuid
from datetime import UTC, datetime
from typing import Any

from forgestack_db.audit import insert_audit_event
from forgestack_db.database import Database
from forgestack_db.organisations import get_or_create_organisation


async def make_org(db: Database, name: str | None = None) -> uuid.UUID:
    async with db.service_context("test setup: create organisation") as session:
        org, _ = await get_or_create_organisation(session, name or f"org-{uuid.uuid4().hex[:8]}")
        return org.id


def audit_values(org_id: uuid.UUID | None, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "org_id": org_id,
        "actor_id": "user-1",
        "actor_type": "user",
        "action": "project.updated",
        "resource_type": "project",
        "resource_id": "p-1",
        "occurred_at": datetime.now(UTC),
    }
    return values | overrides


async def add_audit(db: Database, org_id: uuid.UUID | None, **overrides: Any) -> uuid.UUID:
    values = audit_values(org_id, **overrides)
    async with db.service_context("test setup: audit event") as session:
        assert await insert_audit_event(session, values)
    return uuid.UUID(str(values["event_id"]))
