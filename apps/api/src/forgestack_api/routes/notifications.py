"""Notifications: the tenant-facing door to the notification email job.

Any valid API key may call it; the job belongs to the key's organisation. The body is validated
with the job's own types, so an address or subject that could inject a header, a template the
worker does not have, or variables its template would refuse, is a 422 and nothing reaches Redis.
"""

import hashlib
from typing import Annotated

from fastapi import APIRouter, Response, status
from forgestack_queue.options import JobOptions
from forgestack_queue.states import JobState
from forgestack_shared.catalog import NOTIFICATION_EMAIL
from forgestack_shared.jobs.email_templates import PRODUCER_CONTEXT
from forgestack_shared.jobs.notification_email import (
    NotificationEmailContent,
    NotificationEmailData,
    new_message_id,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..audit import AuditDep
from ..auth import Principal
from ..deps import JobsDep, PrincipalDep
from ..errors import JobInputError, validation_errors

router = APIRouter(prefix="/notifications", tags=["notifications"])

IdempotencyKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,100}$")]


class NotificationEmailRequest(NotificationEmailContent):
    # Built at import, unlike the job model it extends (deferred for the worker's start-up):
    # FastAPI wraps a body model in an aliased Annotated type, which pydantic warns about when
    # it has to build the model inside it.
    model_config = ConfigDict(defer_build=False)

    idempotency_key: IdempotencyKey | None = Field(
        default=None,
        description="Repeat a request with the same key and no second email is queued: the "
        "first job is returned with 200. Keys are scoped to the caller's organisation.",
    )


class NotificationEmailAccepted(BaseModel):
    id: str = Field(description="The job id; operators read its state at /api/v1/jobs/{id}.")
    queue: str
    state: JobState
    created: bool = Field(description="False when `idempotency_key` named an existing job.")
    message_id: str = Field(description="The Message-ID header the email will carry.")


def _scope(principal: Principal) -> str:
    return str(principal.org_id) if principal.org_id else "operator"


def _message_id(scope: str, key: str | None) -> str:
    """Derived from the idempotency key, so a repeated request names the same Message-ID."""
    if key is None:
        return new_message_id()
    digest = hashlib.sha256(f"{scope}:{key}".encode()).hexdigest()[:32]
    return f"<{digest}@forgestack>"


@router.post(
    "/email",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue one templated email (welcome, invitation or notification)",
    responses={
        200: {"description": "`idempotency_key` named an existing job: it is returned."},
        422: {"description": "Invalid address, subject, template or variables."},
    },
)
async def send_email(
    body: NotificationEmailRequest,
    principal: PrincipalDep,
    queues: JobsDep,
    audit: AuditDep,
    response: Response,
) -> NotificationEmailAccepted:
    fields = body.model_dump(exclude={"idempotency_key"})
    fields["message_id"] = _message_id(_scope(principal), body.idempotency_key)
    try:
        data = NotificationEmailData.model_validate(fields, context=PRODUCER_CONTEXT)
    except ValidationError as exc:
        raise JobInputError(validation_errors(exc, "body")) from exc
    options = None
    if body.idempotency_key is not None:
        # Job ids are per owner (the key's organisation): the same key in two organisations
        # names two jobs, and nothing in the id lets one organisation take another's.
        options = JobOptions(job_id=f"{NOTIFICATION_EMAIL.name.value}:{body.idempotency_key}")
    result = await queues.add(NOTIFICATION_EMAIL, data, options)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    else:
        await audit.record(
            "notification_email.queued", "job", result.id, metadata={"template": body.template}
        )
    return NotificationEmailAccepted(
        id=result.id,
        queue=NOTIFICATION_EMAIL.name.value,
        state=result.state,
        created=result.created,
        message_id=data.message_id,
    )
