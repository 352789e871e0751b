"""The audit log: record an event (any key; enqueued, 202) and read the caller's organisation's
events (owners and admins; the operator key reads platform-level events)."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from forgestack_db.audit import (
    MAX_PAGE,
    AuditPage,
    AuditQuery,
    InvalidCursorError,
    list_audit_events,
)
from forgestack_db.models import ApiKeyRole, AuditLog
from forgestack_shared.jobs.audit_log import ActorType, AuditChanges, AuditLogData, IpAddress
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.config import JsonDict, JsonValue

from ..audit import AuditDep, enqueue_audit_event
from ..auth import Principal, Role
from ..deps import JobsDep, PrincipalDep
from ..errors import JobInputError, validation_errors
from ..guarded_database import GuardedDatabase
from ..tenant import DatabaseDep

router = APIRouter(prefix="/audit-logs", tags=["audit logs"])

PLATFORM_REASON = "operator reads platform-level audit events"


def _given(field: str) -> JsonDict:
    return {"required": [field], "properties": {field: {"type": "string"}}}


_WHOLE_ACTOR: list[JsonValue] = [
    # `_whole_actor` below, in JSON Schema, so a client (and a fuzzer) sees the rule.
    {"if": _given("actor_id"), "then": _given("actor_type"), "else": {"not": _given("actor_type")}},
    {"if": _given("actor_name"), "then": _given("actor_id")},
    {"if": _given("actor_email"), "then": _given("actor_id")},
]


class AuditEventRequest(BaseModel):
    """An event to record. The organisation is the calling key's; the actor defaults to the key
    (set it when recording what one of your users did)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"allOf": _WHOLE_ACTOR})

    event_id: uuid.UUID | None = Field(
        default=None, description="Your id for the event: sending it again records it once."
    )
    actor_id: str | None = Field(default=None, min_length=1, max_length=200)
    actor_type: ActorType | None = None
    actor_name: str | None = Field(default=None, min_length=1, max_length=200)
    actor_email: str | None = Field(default=None, max_length=320)
    action: str = Field(min_length=1, max_length=100)
    resource_type: str = Field(min_length=1, max_length=100)
    resource_id: str | None = Field(default=None, min_length=1, max_length=200)
    resource_name: str | None = Field(default=None, min_length=1, max_length=200)
    changes: AuditChanges | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    ip_address: IpAddress | None = Field(default=None, description="Default: the caller's.")
    user_agent: str | None = Field(default=None, max_length=500)
    occurred_at: AwareDatetime | None = Field(default=None, description="Default: now.")

    @model_validator(mode="after")
    def _whole_actor(self) -> "AuditEventRequest":
        named = self.actor_name is not None or self.actor_email is not None
        if (self.actor_id is None) != (self.actor_type is None) or (
            named and self.actor_id is None
        ):
            raise ValueError(
                "give actor_id with actor_type (and optionally name and email), or none"
            )
        return self


class AuditEventAccepted(BaseModel):
    event_id: uuid.UUID
    created: bool = Field(description="False when this event id was already queued.")


class AuditEvent(BaseModel):
    event_id: uuid.UUID
    org_id: uuid.UUID | None
    actor_id: str
    actor_type: str
    actor_name: str | None
    actor_email: str | None
    action: str
    resource_type: str
    resource_id: str | None
    resource_name: str | None
    changes: dict[str, Any] | None
    metadata: dict[str, Any] | None
    ip_address: str | None
    user_agent: str | None
    occurred_at: datetime
    recorded_at: datetime | None

    @classmethod
    def of(cls, row: AuditLog) -> "AuditEvent":
        return cls(**row.model_dump(exclude={"id", "event_metadata"}), metadata=row.event_metadata)


class AuditEventPage(BaseModel):
    events: list[AuditEvent]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page.")


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Record an audit event for the caller's organisation",
    responses={
        200: {"description": "`event_id` was already queued: nothing new was recorded."},
        503: {"description": "Redis is unreachable: the event was NOT recorded; retry."},
    },
)
async def record_event(
    body: AuditEventRequest,
    principal: PrincipalDep,
    queues: JobsDep,
    audit: AuditDep,
    response: Response,
) -> AuditEventAccepted:
    actor = {"actor_id", "actor_type", "actor_name", "actor_email"}
    try:
        fields = audit.event(body.action, body.resource_type).model_dump(exclude={"metadata"})
        if body.actor_id is not None:
            fields |= body.model_dump(include=actor)
        fields |= body.model_dump(exclude_unset=True, exclude_none=True, exclude=actor)
        fields["org_id"] = principal.org_id  # the key's organisation, whatever the body says
        event = AuditLogData.model_validate(fields)
    except ValidationError as exc:
        raise JobInputError(validation_errors(exc, "body")) from exc
    created = await enqueue_audit_event(queues, event)
    if not created:
        response.status_code = status.HTTP_200_OK
    return AuditEventAccepted(event_id=event.event_id, created=created)


@router.get(
    "",
    summary="The caller's organisation's audit events, newest first",
    responses={
        400: {"description": "The cursor is not one this endpoint returned."},
        403: {"description": "Members may record events but not read the log."},
    },
)
async def list_events(
    principal: PrincipalDep,
    db: DatabaseDep,
    action: Annotated[str | None, Query(max_length=100)] = None,
    resource_type: Annotated[str | None, Query(max_length=100)] = None,
    actor_id: Annotated[str | None, Query(max_length=200)] = None,
    occurred_from: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    occurred_to: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> AuditEventPage:
    if not principal.at_least(Role.OWNER):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "reading the audit log needs an owner or admin key"
        )
    query = AuditQuery(
        action=action,
        resource_type=resource_type,
        actor_id=actor_id,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        cursor=cursor,
        limit=limit,
    )
    try:
        page = await _read(db, principal, query)
    except InvalidCursorError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    return AuditEventPage(
        events=[AuditEvent.of(e) for e in page.events], next_cursor=page.next_cursor
    )


async def _read(db: GuardedDatabase, principal: Principal, query: AuditQuery) -> AuditPage:
    if principal.org_id is None:
        async with db.service_context(PLATFORM_REASON) as session:
            return await list_audit_events(session, None, query)
    role = ApiKeyRole(principal.role.value)
    async with db.tenant_context(principal.org_id, principal.key_id, role) as session:
        return await list_audit_events(session, principal.org_id, query)
