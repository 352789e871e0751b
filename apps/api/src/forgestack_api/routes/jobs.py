"""Single jobs by id: read, retry a failed one, remove one that is not running, cancel, promote a
delayed one, change the priority of one not yet running.

Ids are the caller's: an organisation's key sees its organisation's jobs under their own ids, and
another organisation's job is a 404 like a missing one; the operator sees every job."""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Query, Response, status
from forgestack_queue.records import JobRecord

from ..access import require_manage, require_read
from ..audit import AuditDep, AuditRecorder
from ..auth import Principal
from ..deps import JobsDep, PrincipalDep
from ..schemas import JobWaitResult, PriorityChange

MAX_WAIT_MS = 60_000

router = APIRouter(prefix="/jobs", tags=["jobs"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No job of yours has this id (or it was removed by retention)."}
}
_OWNERS: dict[int | str, dict[str, Any]] = {403: {"description": "Needs an owner key or above."}}


async def _act_on_job(
    job_id: str,
    principal: Principal,
    audit: AuditRecorder,
    action: str,
    act: Callable[[str], Awaitable[JobRecord]],
    **details: Any,
) -> JobRecord:
    """An owner's action on one job, then its audit event (named after the job's queue)."""
    require_manage(principal)
    record = await act(job_id)
    await audit.record(action, "job", job_id, resource_name=record.queue, **details)
    return record


@router.get(
    "/{job_id}",
    summary="A job's state, data, options, result or failure",
    responses={
        **_NOT_FOUND,
        409: {
            "description": "Redis Cluster only: custom ids are unique per queue there, and this "
            "id names jobs in several queues (`ambiguous_job_id`, with their `queues`)."
        },
    },
)
async def get_job(job_id: str, queues: JobsDep, principal: PrincipalDep) -> JobRecord:
    record = await queues.get_job(job_id)
    require_read(principal, record.queue)
    return record


@router.get(
    "/{job_id}/wait",
    summary="Wait until a job finishes (result or failure), at most timeout_ms",
    responses={
        **_NOT_FOUND,
        410: {
            "description": "The job completed and was removed on completion with a result over "
            "EVENTS_RESULT_MAX_BYTES: the result was not kept anywhere."
        },
    },
)
async def wait_for_job(
    job_id: str,
    queues: JobsDep,
    principal: PrincipalDep,
    timeout_ms: int = Query(default=30_000, ge=0, le=MAX_WAIT_MS),
) -> JobWaitResult:
    """Blocks on the queue's event stream, not on the job: 200 either way, `finished: false`
    with the job's current state when the time runs out (the job is fine; ask again)."""
    record = await queues.get_job(job_id)
    require_read(principal, record.queue)
    outcome = await queues.wait(job_id, timeout_ms / 1000)
    return JobWaitResult(
        finished=outcome.finished,
        state=outcome.state,
        result=outcome.result_or_raise(job_id),
        failed_reason=outcome.failed_reason,
        job=outcome.record,
    )


@router.post(
    "/{job_id}/retry",
    summary="Move a failed job back to waiting with its attempts reset (owners)",
    responses={**_NOT_FOUND, **_OWNERS, 409: {"description": "The job is not failed."}},
)
async def retry_job(
    job_id: str, queues: JobsDep, principal: PrincipalDep, audit: AuditDep
) -> JobRecord:
    return await _act_on_job(job_id, principal, audit, "job.retried", queues.retry)


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a waiting, delayed, completed or failed job (owners)",
    responses={**_NOT_FOUND, **_OWNERS, 409: {"description": "The job is active."}},
)
async def remove_job(
    job_id: str, queues: JobsDep, principal: PrincipalDep, audit: AuditDep
) -> Response:
    require_manage(principal)
    await queues.remove(job_id)
    await audit.record("job.removed", "job", job_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{job_id}/cancel",
    summary="Cancel a waiting, delayed or running job: it ends failed as `cancelled` (owners)",
    description="A waiting or delayed job is failed at once. A running one is flagged and its "
    "worker cancels the handler (`asyncio.CancelledError`) within about a second; the answer may "
    "still show it `active`. A cancelled job is never retried.",
    responses={**_NOT_FOUND, **_OWNERS, 409: {"description": "The job has already ended."}},
)
async def cancel_job(
    job_id: str, queues: JobsDep, principal: PrincipalDep, audit: AuditDep
) -> JobRecord:
    return await _act_on_job(job_id, principal, audit, "job.cancelled", queues.cancel)


@router.post(
    "/{job_id}/promote",
    summary="Run a delayed job now (owners)",
    responses={**_NOT_FOUND, **_OWNERS, 409: {"description": "The job is not delayed."}},
)
async def promote_job(
    job_id: str, queues: JobsDep, principal: PrincipalDep, audit: AuditDep
) -> JobRecord:
    return await _act_on_job(job_id, principal, audit, "job.promoted", queues.promote)


@router.patch(
    "/{job_id}",
    summary="Change the priority of a waiting or delayed job (owners)",
    responses={
        **_NOT_FOUND,
        **_OWNERS,
        409: {"description": "The job is running or has ended."},
    },
)
async def change_priority(
    job_id: str, body: PriorityChange, queues: JobsDep, principal: PrincipalDep, audit: AuditDep
) -> JobRecord:
    return await _act_on_job(
        job_id,
        principal,
        audit,
        "job.reprioritised",
        lambda job: queues.set_priority(job, body.priority),
        metadata={"priority": body.priority},
    )
