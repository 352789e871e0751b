"""The audit-log job: one event, written once to the append-only audit table by the worker.

`event_id` is created by the producer, not the worker, so the same event enqueued twice (a client
retrying its POST, a job retried after the row was written but before the ack) stores one row."""

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

ActorType = Literal["user", "api_key", "system"]
MAX_DOCUMENT_BYTES = 64 * 1024
"""`changes` plus `metadata`, as JSON: an audit row is a record, not a file store."""

IpAddress = Annotated[
    IPvAnyAddress,
    # pydantic documents it as format `ipvanyaddress`, which no JSON Schema tool knows.
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]}
    ),
]

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class AuditChanges(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class AuditLogData(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    event_id: uuid.UUID = Field(
        default_factory=uuid.uuid4,
        description="Chosen by the producer; the same id is stored at most once.",
    )
    org_id: uuid.UUID | None = Field(
        description="The organisation the event belongs to; None for platform-level events "
        "(the operator key), which no tenant can read."
    )
    actor_id: Name
    actor_type: ActorType
    actor_name: Name | None = None
    actor_email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=320)] | None = (
        Field(default=None, description="Recorded as given: the log keeps what happened, unjudged.")
    )
    action: Code = Field(description="What happened, e.g. `job.retried`, `user.invited`.")
    resource_type: Code
    resource_id: Name | None = None
    resource_name: Name | None = None
    changes: AuditChanges | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    ip_address: IpAddress | None = None
    user_agent: Annotated[str, StringConstraints(max_length=500)] | None = None
    occurred_at: AwareDatetime = Field(
        default_factory=lambda: datetime.now(UTC),
        description="When it happened (producer clock); a retried write keeps this time.",
    )

    @model_validator(mode="after")
    def _bounded_documents(self) -> "AuditLogData":
        changes = self.changes.model_dump() if self.changes else None
        size = len(json.dumps([changes, self.metadata], default=str).encode())
        if size > MAX_DOCUMENT_BYTES:
            raise ValueError(
                f"changes and metadata take {size} bytes; the limit is {MAX_DOCUMENT_BYTES}"
            )
        return self

    @model_validator(mode="after")
    def _storable_text(self) -> "AuditLogData":
        # PostgreSQL text and jsonb cannot hold U+0000: refused here, at enqueue, instead of an
        # accepted event whose every write attempt then fails in the worker. JSON writes U+0000 as
        # `\u0000`, so text without that sequence (nearly every event) has none; with it (a NUL,
        # or a literal backslash-u0000), the walk over every string decides.
        if "\\u0000" in self.model_dump_json() and _holds_nul(self.model_dump(mode="json")):
            raise ValueError("text cannot contain the NUL character (U+0000)")
        return self


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


class AuditLogResult(BaseModel):
    model_config = ConfigDict(defer_build=True)

    event_id: uuid.UUID
    stored: bool = Field(description="False when the event was already stored (a duplicate).")
