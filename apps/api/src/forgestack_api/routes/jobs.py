"""Single jobs by id: read, retry a failed one, remove one that is not running."""

from typing import Any

from fastapi import APIRouter, Depends, Response, status
from forgestack_queue.records import JobRecord

from ..audit import AuditDep
from ..deps import QueueServiceDep, require_admin

router = APIRouter(prefix="/jobs", tags=["jobs"], dependencies=[Depends(require_admin)])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No job has this id (or it was removed by retention)."}
}


@router.get(
    "/{job_id}", summary="A job's state, data, options, result or failure", responses=_NOT_FOUND
)
async def get_job(job_id: str, queues: QueueServiceDep) -> JobRecord:
    return await queues.get_job(job_id)


@router.post(
    "/{job_id}/retry",
    summary="Move a failed job back to waiting with its attempts reset",
    responses={**_NOT_FOUND, 409: {"description": "The job is not failed."}},
)
async def retry_job(job_id: str, queues: QueueServiceDep, audit: AuditDep) -> JobRecord:
    record = await queues.retry(job_id)
    await audit.record("job.retried", "job", job_id, resource_name=record.queue)
    return record


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a waiting, delayed, completed or failed job",
    responses={**_NOT_FOUND, 409: {"description": "The job is active."}},
)
async def remove_job(job_id: str, queues: QueueServiceDep, audit: AuditDep) -> Response:
    await queues.remove(job_id)
    await audit.record("job.removed", "job", job_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
