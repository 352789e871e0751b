"""The live worker fleet: one entry per worker process whose heartbeat has not lapsed.

The operator sees every worker whole. An organisation's key sees the same fleet (queues,
concurrency, how many attempts run, beats) without host or process id, and of the running jobs
only its own, in queues its role may read, under its own ids: never another organisation's."""

from fastapi import APIRouter
from forgestack_queue.workers import WorkerInfo

from ..access import access_of
from ..deps import JobsDep, PrincipalDep

router = APIRouter(tags=["workers"])


@router.get(
    "/workers",
    summary="Live workers: id, queues, concurrency, running jobs, beats (host and pid: operator)",
)
async def list_workers(jobs: JobsDep, principal: PrincipalDep) -> list[WorkerInfo]:
    listed = await jobs.workers()
    return [
        w.model_copy(
            update={"jobs": [j for j in w.jobs if principal.at_least(access_of(j.queue).read)]}
        )
        for w in listed
    ]
