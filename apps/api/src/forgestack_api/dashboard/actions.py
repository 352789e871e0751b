"""Every dashboard action, job-level and queue-level, as data: the pages render one confirmed form
per entry that applies (by state and role), and one route runs any of them. A new action is one
entry here (a label, the confirmation, the states or queue condition it applies to, the least
role, and the `QueueService` call), not a template or route change."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from forgestack_queue.states import JobState

from ..access import MANAGE
from ..auth import Role
from ..queue_service import QueueService

JobRun = Callable[[QueueService, str], Awaitable[str]]
QueueRun = Callable[[QueueService, str, Mapping[str, str]], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class JobAction:
    name: str
    label: str
    confirm: str
    states: frozenset[JobState]
    """The states the button shows in; the job layer still has the last word (409)."""
    audit_event: str
    run: JobRun
    danger: bool = False
    role: Role = MANAGE


@dataclass(frozen=True, slots=True)
class QueueAction:
    name: str
    label: str
    confirm: str
    audit_event: str
    run: QueueRun
    params: tuple[str, ...] = field(default=())
    """Form fields the action reads (rendered by the queue page's own markup for it)."""
    danger: bool = False
    role: Role = MANAGE
    when_paused: bool | None = None
    """Shown only while the queue is (True) or is not (False) paused; None: always."""


async def _retry(queues: QueueService, job_id: str) -> str:
    record = await queues.retry(job_id)
    return f"Job {record.id} is waiting again."


async def _remove(queues: QueueService, job_id: str) -> str:
    await queues.remove(job_id)
    return f"Job {job_id} was removed."


async def _retry_failed(queues: QueueService, queue: str, _: Mapping[str, str]) -> str:
    retried = await queues.retry_failed(queue)
    return f"{retried} failed job(s) of {queue} are waiting again."


async def _cancel(queues: QueueService, job_id: str) -> str:
    record = await queues.cancel(job_id)
    return f"Job {record.id} is cancelled."


async def _promote(queues: QueueService, job_id: str) -> str:
    record = await queues.promote(job_id)
    return f"Job {record.id} is waiting now."


async def _pause(queues: QueueService, queue: str, _: Mapping[str, str]) -> str:
    await queues.controls(queues.known_queue(queue)).pause()
    return f"{queue} is paused: no worker starts another of its jobs."


async def _resume(queues: QueueService, queue: str, _: Mapping[str, str]) -> str:
    await queues.controls(queues.known_queue(queue)).resume()
    return f"{queue} is running again."


class ActionInputError(ValueError):
    """A queue action's parameter is missing or out of range: shown on the page, nothing done."""


CLEANABLE = (JobState.COMPLETED, JobState.FAILED, JobState.WAITING, JobState.DELAYED)


async def _clean(queues: QueueService, queue: str, form: Mapping[str, str]) -> str:
    try:
        state = JobState(form.get("state", ""))
        minutes = int(form.get("older_than_min", ""))
    except ValueError as exc:
        raise ActionInputError("choose a state and a whole number of minutes") from exc
    if state not in CLEANABLE or not 0 <= minutes <= 525_600:
        raise ActionInputError("minutes must be 0 to 525600, the state not active")
    removed = await queues.clean(queue, state, minutes * 60)
    return f"Removed {removed} {state} job(s) of {queue} older than {minutes} min."


JOB_ACTIONS: dict[str, JobAction] = {
    a.name: a
    for a in (
        JobAction(
            "retry",
            "Retry",
            "Move this failed job back to waiting, attempts reset?",
            frozenset({JobState.FAILED}),
            "job.retried",
            _retry,
        ),
        JobAction(
            "promote",
            "Run now",
            "Move this delayed job to waiting now?",
            frozenset({JobState.DELAYED}),
            "job.promoted",
            _promote,
        ),
        JobAction(
            "cancel",
            "Cancel",
            "Cancel this job? It ends failed as cancelled and is never retried.",
            frozenset({JobState.WAITING, JobState.DELAYED, JobState.ACTIVE}),
            "job.cancelled",
            _cancel,
            danger=True,
        ),
        JobAction(
            "remove",
            "Remove",
            "Remove this job for good?",
            frozenset({JobState.WAITING, JobState.DELAYED, JobState.COMPLETED, JobState.FAILED}),
            "job.removed",
            _remove,
            danger=True,
        ),
    )
}

QUEUE_ACTIONS: dict[str, QueueAction] = {
    a.name: a
    for a in (
        QueueAction(
            "pause",
            "Pause",
            "Pause this queue for every organisation? Running jobs finish; no new one starts.",
            "queue.paused",
            _pause,
            role=Role.OPERATOR,
            when_paused=False,
        ),
        QueueAction(
            "resume",
            "Resume",
            "Resume this queue?",
            "queue.resumed",
            _resume,
            role=Role.OPERATOR,
            when_paused=True,
        ),
        QueueAction(
            "retry-failed",
            "Retry all failed",
            "Move every failed job of this queue back to waiting?",
            "queue.failed_retried",
            _retry_failed,
        ),
        QueueAction(
            "clean",
            "Clean",
            "Remove every job in the chosen state older than the given minutes?",
            "queue.cleaned",
            _clean,
            params=("state", "older_than_min"),
            danger=True,
        ),
    )
}
