"""Queue-wide controls for operators: pause and resume, and run-time limit overrides.

They act on every organisation's jobs of a queue at once, so only the operator key may use them;
an organisation's key gets 403. `GET /api/v1/queues` shows their effect to everyone."""

from typing import Any

from fastapi import APIRouter, Response, status
from forgestack_queue.limits import QueueLimits

from ..access import require_role
from ..audit import AuditDep
from ..auth import Role
from ..deps import JobsDep, PrincipalDep

router = APIRouter(prefix="/queues", tags=["queues"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Needs the operator key."},
    404: {"description": "The queue is not in the catalog."},
}


@router.post(
    "/{queue}/pause",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="No worker starts another job of the queue; running ones finish (operator)",
    responses=_RESPONSES,
)
async def pause(queue: str, queues: JobsDep, principal: PrincipalDep, audit: AuditDep) -> Response:
    name = queues.known_queue(queue)
    require_role(principal, Role.OPERATOR, "pausing a queue")
    await queues.controls(name).pause()
    await audit.record("queue.paused", "queue", queue)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{queue}/resume",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Workers start the queue's jobs again (operator)",
    responses=_RESPONSES,
)
async def resume(queue: str, queues: JobsDep, principal: PrincipalDep, audit: AuditDep) -> Response:
    name = queues.known_queue(queue)
    require_role(principal, Role.OPERATOR, "resuming a queue")
    await queues.controls(name).resume()
    await audit.record("queue.resumed", "queue", queue)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/{queue}/limits",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Override the catalog's rate limit and concurrency cap (operator)",
    description="Replaces both: a `null` field means no such limit while the override holds. "
    "Every worker applies it from its next claim.",
    responses=_RESPONSES,
)
async def set_limits(
    queue: str, body: QueueLimits, queues: JobsDep, principal: PrincipalDep, audit: AuditDep
) -> Response:
    name = queues.known_queue(queue)
    require_role(principal, Role.OPERATOR, "setting a queue's limits")
    await queues.controls(name).set_limits(body)
    await audit.record("queue.limits_set", "queue", queue, metadata=body.model_dump(mode="json"))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/{queue}/limits",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Drop the override: the catalog's limits apply again (operator)",
    responses=_RESPONSES,
)
async def clear_limits(
    queue: str, queues: JobsDep, principal: PrincipalDep, audit: AuditDep
) -> Response:
    name = queues.known_queue(queue)
    require_role(principal, Role.OPERATOR, "clearing a queue's limits")
    await queues.controls(name).clear_limits()
    await audit.record("queue.limits_cleared", "queue", queue)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
