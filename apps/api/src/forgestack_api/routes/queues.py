"""Queues: their counts, listing their jobs, and bulk actions (enqueueing: `enqueue.py`).

Everything acts within the caller's organisation (the operator: every organisation), so counts,
listings, retry-failed and clean of one organisation never see or touch another's jobs."""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query
from forgestack_queue.producer import JobPage
from forgestack_queue.states import JobState
from forgestack_shared.catalog import CATALOG

from ..access import require_manage, require_read
from ..audit import AuditDep
from ..deps import JobsDep, PrincipalDep
from ..schemas import (
    CleanRequest,
    CleanResult,
    JobCounts,
    QueueSummary,
    RetryFailedResult,
)

router = APIRouter(prefix="/queues", tags=["queues"])

UNKNOWN_QUEUE: dict[int | str, dict[str, Any]] = {
    404: {"description": "The queue is not in the catalog."}
}
FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"description": "The key's role may not do this on this queue (see the README's roles)."}
}


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


@router.get(
    "/{queue}/jobs",
    summary="One page of a queue's jobs in one state (completed and failed: newest first)",
    responses={**UNKNOWN_QUEUE, **FORBIDDEN},
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
    responses={**UNKNOWN_QUEUE, **FORBIDDEN},
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
    responses={**UNKNOWN_QUEUE, **FORBIDDEN},
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
