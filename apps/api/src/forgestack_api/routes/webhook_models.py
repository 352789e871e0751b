"""Request and answer shapes of the webhook routes. No answer model has a field for a secret
except `WebhookEndpointCreated`, the one answer that shows it."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from forgestack_db.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from pydantic import BaseModel, Field, StringConstraints

EventType = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", max_length=200)
]
"""Standard Webhooks' full-stop delimited type, e.g. `invoice.paid`."""


class WebhookEndpointInfo(BaseModel):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str] = Field(description="Empty: every event type.")
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    retry_schedule_s: list[int] | None
    failing_since: datetime | None = Field(
        description="First failure since the last success; the endpoint is disabled when this "
        "is older than WEBHOOK_DISABLE_AFTER_S."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="Until then deliveries are signed with the old secret too."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> "WebhookEndpointInfo":
        return cls.model_validate(
            endpoint.model_dump(exclude={"secret", "previous_secret", "org_id"})
        )


class WebhookEndpointCreated(WebhookEndpointInfo):
    secret: str = Field(description="The signing secret (`whsec_...`). Shown this once.")

    @classmethod
    def of(cls, endpoint: WebhookEndpoint, secret: str | None = None) -> "WebhookEndpointCreated":
        info = WebhookEndpointInfo.of(endpoint).model_dump()
        return cls.model_validate(info | {"secret": secret or ""})


class WebhookDeliveryInfo(BaseModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: str = Field(description="The `webhook-id` header, the same on every retry.")
    event_type: str
    payload: str = Field(description="The exact body sent.")
    status: DeliveryStatus
    attempt: int
    request_headers: dict[str, Any] | None = Field(description="As sent, without the signature.")
    response_status: int | None
    response_body: str | None = Field(description="The first few KiB of the answer.")
    duration_ms: int | None
    error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> "WebhookDeliveryInfo":
        return cls.model_validate(delivery.model_dump(exclude={"org_id"}))


class WebhookDeliveryPage(BaseModel):
    deliveries: list[WebhookDeliveryInfo]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page.")
