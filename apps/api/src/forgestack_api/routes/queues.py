"""Queues: their counts, enqueueing into one, listing its jobs, and bulk actions.

Everything acts within the caller's organisation (the operator: every organisation), so counts,
listings, retry-failed and clean of one organisation never see or touch another's jobs."""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from forgestack_queue.producer import AddResult, JobPage
from forgestack_queue.states import JobState
from forgestack_shared.catalog import CATALOG

from ..access import require_enqueue, require_manage, require_read
from ..audit import AuditDep
from ..caller import BEARER_SECURITY, CallerDep
from ..deps import JobsDep, PrincipalDep
from ..schemas import (
    BulkEnqueueRequest,
    CleanRequest,
    CleanResult,
    EnqueuedJob,
    EnqueueRequest,
    JobCounts,
    QueueSummary,
    RetryFailedResult,
)

router = APIRouter(prefix="/queues", tags=["queues"])

_UNKNOWN_QUEUE: dict[int | str, dict[str, Any]] = {
    404: {"description": "The queue is not in the catalog."}
}
_FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"description": "The key's role may not do this on this queue (see the README's roles)."}
}
_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"description": "Data or options do not validate; `detail` lists each field."}
}
_ID_IN_USE: dict[int | str, dict[str, Any]] = {
    409: {"description": "`options.job_id` names a job of another queue."}
}


def _enqueued(queue: str, result: AddResult) -> EnqueuedJob:
    return EnqueuedJob(id=result.id, queue=queue, state=result.state, created=result.created)


@router.get("", summary="Every queue of the catalog with the counts of the caller's jobs")
async def list_queues(queues: JobsDep) -> list[QueueSummary]:
    names = queues.queue_names
    all_counts = await asyncio.gather(*(queues.counts(name) for name in names))
    controls = await asyncio.gather(*(queues.controls(name).read() for name in names))
    return [
        QueueSummary(
            name=name.value,
            counts=JobCounts(**{state.value: count for state, count in counts.items()}),
            paused=control.paused,
            limits=control.limits_override or CATALOG[name].limits,
            limits_source="catalog" if control.limits_override is None else "operator",
        )
        for name, counts, control in zip(names, all_counts, controls, strict=True)
    ]


@router.post(
    "/{queue}/jobs",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Enqueue one job",
    openapi_extra=BEARER_SECURITY,
    responses={
        200: {"description": "`options.job_id` named an existing job: it is returned, unchanged."},
        **_UNKNOWN_QUEUE,
        **_FORBIDDEN,
        **_INVALID,
        **_ID_IN_USE,
    },
)
async def enqueue(
    queue: str, body: EnqueueRequest, caller: CallerDep, response: Response
) -> EnqueuedJob:
    require_enqueue(caller.principal, caller.jobs.known_queue(queue))
    result = await caller.jobs.add_raw(queue, body.data, body.options)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    else:
        await caller.audit.record("job.enqueued", "job", result.id, resource_name=queue)
    return _enqueued(queue, result)


@router.post(
    "/{queue}/jobs:bulk",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Enqueue up to 1,000 jobs at once, all or none",
    openapi_extra=BEARER_SECURITY,
    responses={**_UNKNOWN_QUEUE, **_FORBIDDEN, **_INVALID, **_ID_IN_USE},
)
async def enqueue_bulk(
    queue: str, body: BulkEnqueueRequest, caller: CallerDep
) -> list[EnqueuedJob]:
    require_enqueue(caller.principal, caller.jobs.known_queue(queue))
    jobs = [(job.data, job.options) for job in body.jobs]
    results = await caller.jobs.add_bulk_raw(queue, jobs)
    created = sum(result.created for result in results)
    await caller.audit.record("jobs.enqueued", "queue", queue, metadata={"created": created})
    return [_enqueued(queue, result) for result in results]


@router.get(
    "/{queue}/jobs",
    summary="One page of a queue's jobs in one state (completed and failed: newest first)",
    responses={**_UNKNOWN_QUEUE, **_FORBIDDEN},
)
async def list_jobs(
    queue: str,
    queues: JobsDep,
    principal: PrincipalDep,
    state: JobState,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    # 18 digits: the cursor plus the limit must stay a signed 64-bit Redis rank.
    cursor: Annotated[str | None, Query(max_length=18, pattern=r"^[0-9]+$")] = None,
) -> JobPage:
    require_read(principal, queues.known_queue(queue))
    return await queues.list_jobs(queue, state, limit, cursor)


@router.post(
    "/{queue}/retry-failed",
    summary="Move every failed job of the queue (of the caller's organisation) back to waiting",
    responses={**_UNKNOWN_QUEUE, **_FORBIDDEN},
)
async def retry_failed(
    queue: str, queues: JobsDep, principal: PrincipalDep, audit: AuditDep
) -> RetryFailedResult:
    queues.known_queue(queue)
    require_manage(principal)
    retried = await queues.retry_failed(queue)
    await audit.record("queue.failed_retried", "queue", queue, metadata={"retried": retried})
    return RetryFailedResult(retried=retried)


@router.post(
    "/{queue}/clean",
    summary="Remove the queue's jobs (of the caller's organisation) in one state older than an age",
    responses={**_UNKNOWN_QUEUE, **_FORBIDDEN},
)
async def clean(
    queue: str, body: CleanRequest, queues: JobsDep, principal: PrincipalDep, audit: AuditDep
) -> CleanResult:
    queues.known_queue(queue)
    require_manage(principal)
    removed = await queues.clean(queue, body.state, body.older_than_s)
    await audit.record(
        "queue.cleaned",
        "queue",
        queue,
        metadata=body.model_dump(mode="json") | {"removed": removed},
    )
    return CleanResult(removed=removed)
