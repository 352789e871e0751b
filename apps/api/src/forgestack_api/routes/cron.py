"""The worker's cron jobs as the operator sees them: each tick is a job of the internal `cron`
queue (a failed tick sits in its failed store), and the queue-health snapshots it records.

Operator key only: ticks belong to the platform, not to an organisation, so an organisation's
key (whatever its role) gets 404, as for anything it does not own."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from forgestack_queue.producer import JobPage
from forgestack_queue.queue_stats import QueueCounts
from forgestack_queue.states import JobState

from ..auth import Principal
from ..deps import JobsDep, PrincipalDep


async def require_operator(principal: PrincipalDep) -> Principal:
    if principal.org_id is not None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return principal


router = APIRouter(
    prefix="/cron",
    tags=["cron"],
    responses={404: {"description": "Operator only: an organisation key gets 404."}},
    dependencies=[Depends(require_operator)],
)


@router.get(
    "/jobs", summary="One page of cron ticks in one state (completed and failed: newest first)"
)
async def list_ticks(
    queues: JobsDep,
    state: JobState,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]+$")] = None,
) -> JobPage:
    return await queues.list_cron_ticks(state, limit, cursor)


@router.get("/queue-health", summary="Job counts per queue and state, newest snapshot first")
async def queue_health(
    queues: JobsDep, limit: Annotated[int, Query(ge=1, le=1440)] = 60
) -> list[QueueCounts]:
    return await queues.queue_health(limit)
