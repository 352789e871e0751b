"""Queue-wide controls for operators: pause and resume, and run-time limit overrides.

They act on every organisation's jobs of a queue at once, so only the operator key may use them;
an organisation's key gets 403. `GET /api/v1/queues` shows their effect to everyone."""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Response, status
from forgestack_queue.controls import QueueControls
from forgestack_queue.limits import QueueLimits

from ..access import require_role
from ..audit import AuditDep, AuditRecorder
from ..auth import Principal, Role
from ..deps import JobsDep, PrincipalDep
from ..queue_service import QueueService

router = APIRouter(prefix="/queues", tags=["queues"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Needs the operator key."},
    404: {"description": "The queue is not in the catalog."},
}


async def _control(
    queue: str,
    queues: QueueService,
    principal: Principal,
    audit: AuditRecorder,
    doing: str,
    action: str,
    act: Callable[[QueueControls], Awaitable[None]],
    **details: Any,
) -> Response:
    """An operator's queue-wide control (`doing` names it in a 403), then its audit event."""
    name = queues.known_queue(queue)
    require_role(principal, Role.OPERATOR, doing)
    await act(queues.controls(name))
    await audit.record(action, "queue", queue, **details)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{queue}/pause",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="No worker starts another job of the queue; running ones finish (operator)",
    responses=_RESPONSES,
)
async def pause(queue: str, queues: JobsDep, principal: PrincipalDep, audit: AuditDep) -> Response:
    return await _control(
        queue, queues, principal, audit, "pausing a queue", "queue.paused", QueueControls.pause
    )


@router.post(
    "/{queue}/resume",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Workers start the queue's jobs again (operator)",
    responses=_RESPONSES,
)
async def resume(queue: str, queues: JobsDep, principal: PrincipalDep, audit: AuditDep) -> Response:
    return await _control(
        queue, queues, principal, audit, "resuming a queue", "queue.resumed", QueueControls.resume
    )


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
    return await _control(
        queue,
        queues,
        principal,
        audit,
        "setting a queue's limits",
        "queue.limits_set",
        lambda controls: controls.set_limits(body),
        metadata=body.model_dump(mode="json"),
    )


@router.delete(
    "/{queue}/limits",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Drop the override: the catalog's limits apply again (operator)",
    responses=_RESPONSES,
)
async def clear_limits(
    queue: str, queues: JobsDep, principal: PrincipalDep, audit: AuditDep
) -> Response:
    return await _control(
        queue,
        queues,
        principal,
        audit,
        "clearing a queue's limits",
        "queue.limits_cleared",
        QueueControls.clear_limits,
    )
