"""The webhook-delivery job: one signed POST of one event to one endpoint, retried for days.

The job carries ids only. The payload, the URL and above all the signing secret stay in the
database, which the worker reads under the organisation's tenant context: a job record (in Redis,
in the dashboard, in the failed store) never holds a secret."""

import uuid

from pydantic import BaseModel, ConfigDict, Field


class WebhookDeliveryData(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    org_id: uuid.UUID = Field(description="The organisation the delivery belongs to.")
    delivery_id: uuid.UUID = Field(description="The delivery row: endpoint, event and payload.")


class WebhookDeliveryResult(BaseModel):
    model_config = ConfigDict(defer_build=True)

    delivery_id: uuid.UUID
    status_code: int | None = Field(description="The receiver's answer; None when none came.")
    delivered: bool
