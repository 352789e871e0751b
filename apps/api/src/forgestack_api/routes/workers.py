"""The live worker fleet: one entry per worker process whose heartbeat has not lapsed.

Operator only: workers serve every organisation, and how busy the fleet is says something about
other organisations' load, so an organisation's key gets 403."""

from fastapi import APIRouter
from forgestack_queue.workers import WorkerInfo

from ..access import require_role
from ..auth import Role
from ..deps import JobsDep, PrincipalDep

router = APIRouter(tags=["workers"])


@router.get(
    "/workers",
    summary="Live workers: id, host, pid, queues, concurrency, running jobs, beats (operator)",
    responses={403: {"description": "Needs the operator key."}},
)
async def list_workers(jobs: JobsDep, principal: PrincipalDep) -> list[WorkerInfo]:
    require_role(principal, Role.OPERATOR, "listing workers")
    return await jobs.workers()
