"""Writes one audit event. Idempotent on `event_id`, so a retry after a lost acknowledgement, or the
same event enqueued twice, leaves exactly one row. Connection errors propagate and are retried with
the queue's backoff; a row the database rejects for good (unknown organisation) fails at once."""

from typing import Any

from forgestack_queue.errors import UnrecoverableError
from forgestack_queue.job import Job
from forgestack_shared.jobs.audit_log import AuditLogData, AuditLogResult

from ..resources import resources

SERVICE_REASON = "audit log worker"


def row_values(data: AuditLogData) -> dict[str, Any]:
    dumped = data.model_dump(mode="json", exclude={"metadata", "occurred_at", "event_id", "org_id"})
    return {
        **dumped,
        "event_id": data.event_id,
        "org_id": data.org_id,
        "event_metadata": data.metadata,
        "occurred_at": data.occurred_at,
    }


async def handle_audit_log(job: Job[AuditLogData]) -> AuditLogResult:
    # The database layer loads with the worker's resources, not with this module (start-up).
    from forgestack_db.audit import insert_audit_event, stored_event_org
    from sqlalchemy.exc import IntegrityError

    data = job.data
    try:
        async with resources(job).db.service_context(SERVICE_REASON) as session:
            stored = await insert_audit_event(session, row_values(data))
            owner = None if stored else await stored_event_org(session, data.event_id)
    except IntegrityError as exc:
        raise UnrecoverableError(
            f"audit event {data.event_id} rejected by the database: {exc.orig}"
        ) from exc
    if not stored and owner != data.org_id:
        # event_id is global: another organisation's row must not make this event vanish.
        raise UnrecoverableError(
            f"audit event {data.event_id} was already stored for another organisation; "
            "this event was not recorded"
        )
    if stored:
        job.logger.info(
            "audit event {} stored ({} on {})", data.event_id, data.action, data.resource_type
        )
    else:
        job.logger.info("audit event {} was already stored; nothing written", data.event_id)
    return AuditLogResult(event_id=data.event_id, stored=stored)
