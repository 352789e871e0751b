"""The tables. Every row that belongs to a tenant carries `org_id`; on PostgreSQL row-level security
(see the migrations) keys every read and write on it."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from .key_roles import ApiKeyRole as ApiKeyRole
from .rls_tables import TENANT_TABLES as TENANT_TABLES
from .types import BigIntegerPK, JSONDocument, UTCDateTime, utcnow


class ActorType(StrEnum):
    USER = "user"
    API_KEY = "api_key"
    SYSTEM = "system"


def _in(column: str, enum: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(m.value) for m in enum)})"


class Organisation(SQLModel, table=True):
    __tablename__: ClassVar[str] = "organisations"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, unique=True))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class ApiKey(SQLModel, table=True):
    """Only the SHA-256 of the key is stored: keys carry 256 random bits, so a fast hash is enough
    (nothing to brute-force) and lets authentication be one indexed lookup."""

    __tablename__: ClassVar[str] = "api_keys"
    __table_args__ = (sa.CheckConstraint(_in("role", ApiKeyRole), name="ck_api_keys_role"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    org_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid(), sa.ForeignKey("organisations.id"), nullable=False, index=True
        )
    )
    name: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    prefix: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    key_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    role: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    last_used_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
    revoked_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )


class AuditLog(SQLModel, table=True):
    """Append-only: the application role may only INSERT and SELECT, and a trigger rejects UPDATE,
    DELETE and TRUNCATE for everyone. `event_id` comes from the producer so a retried job is a no-op."""

    __tablename__: ClassVar[str] = "audit_logs"
    __table_args__ = (
        sa.CheckConstraint(_in("actor_type", ActorType), name="ck_audit_logs_actor_type"),
        sa.Index("ix_audit_logs_org_occurred", "org_id", "occurred_at", "id"),
    )

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(BigIntegerPK, sa.Identity(), primary_key=True),
    )
    event_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid(), nullable=False, unique=True))
    org_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(sa.Uuid(), sa.ForeignKey("organisations.id"), nullable=True),
    )
    """None for platform-level events (the operator key): no tenant policy matches them."""
    actor_id: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    actor_type: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    actor_name: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    actor_email: str | None = Field(default=None, sa_column=sa.Column(sa.String(320)))
    action: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    resource_type: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    resource_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    resource_name: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    changes: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONDocument))
    event_metadata: dict[str, Any] | None = Field(
        default=None, sa_column=sa.Column("metadata", JSONDocument)
    )
    ip_address: str | None = Field(default=None, sa_column=sa.Column(sa.String(45)))
    user_agent: str | None = Field(default=None, sa_column=sa.Column(sa.String(500)))
    occurred_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    recorded_at: datetime | None = Field(
        default=None,
        sa_column=sa.Column(UTCDateTime(), nullable=False, server_default=sa.func.now()),
    )
    """When the row was written, by the database's clock (later than `occurred_at` after retries)."""


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookEndpoint(SQLModel, table=True):
    """Where an organisation receives events. The secrets are stored as issued because signing
    needs them; the API shows one only when it is created or rotated."""

    __tablename__: ClassVar[str] = "webhook_endpoints"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    org_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid(), sa.ForeignKey("organisations.id"), nullable=False, index=True
        )
    )
    url: str = Field(sa_column=sa.Column(sa.String(2000), nullable=False))
    description: str | None = Field(default=None, sa_column=sa.Column(sa.String(500)))
    event_types: list[str] = Field(
        default_factory=list, sa_column=sa.Column(JSONDocument, nullable=False)
    )
    """Types this endpoint receives; empty means every type."""
    enabled: bool = Field(default=True, sa_column=sa.Column(sa.Boolean(), nullable=False))
    disabled_reason: str | None = Field(default=None, sa_column=sa.Column(sa.String(500)))
    disabled_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    secret: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    previous_secret: str | None = Field(default=None, sa_column=sa.Column(sa.String(100)))
    previous_secret_expires_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime())
    )
    """Until then deliveries carry a signature with each secret, so receivers can switch over."""
    retry_schedule_s: list[int] | None = Field(
        default=None, sa_column=sa.Column(JSONDocument, nullable=True)
    )
    """Overrides WEBHOOK_RETRY_SCHEDULE_S for this endpoint."""
    failing_since: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    """First failed attempt since the last success; the sweep disables after the window."""
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint, and the outcome of its latest attempt. `payload` holds the exact
    bytes that are signed and sent, so every retry sends the same body."""

    __tablename__: ClassVar[str] = "webhook_deliveries"
    __table_args__ = (
        sa.CheckConstraint(_in("status", DeliveryStatus), name="ck_webhook_deliveries_status"),
        sa.Index("ix_webhook_deliveries_org_created", "org_id", "created_at", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    org_id: uuid.UUID = Field(
        sa_column=sa.Column(sa.Uuid(), sa.ForeignKey("organisations.id"), nullable=False)
    )
    endpoint_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid(),
            sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    event_id: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    """The `webhook-id` header: the same on every retry and for every endpoint of one event."""
    event_type: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    payload: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    status: str = Field(
        default=DeliveryStatus.PENDING.value, sa_column=sa.Column(sa.String(16), nullable=False)
    )
    attempt: int = Field(default=0, sa_column=sa.Column(sa.Integer(), nullable=False))
    request_headers: dict[str, str] | None = Field(
        default=None, sa_column=sa.Column(JSONDocument, nullable=True)
    )
    """As sent, minus the signature."""
    response_status: int | None = Field(default=None, sa_column=sa.Column(sa.Integer()))
    response_body: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    duration_ms: int | None = Field(default=None, sa_column=sa.Column(sa.Integer()))
    error: str | None = Field(default=None, sa_column=sa.Column(sa.String(1000)))
    next_attempt_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    delivered_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    failed_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False, index=True)
    )
