"""What the overview shows of each queue: counts per state, throughput and failure rate over the
last minutes (computed from the finish times the completed and failed sets are scored by), and how
many live workers serve it (the worker registry, as GET /api/v1/workers shows it)."""

import asyncio
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from forgestack_queue.states import JobState
from forgestack_queue.workers import WorkerInfo
from forgestack_shared.queues import QueueName

from ..queue_service import QueueService

WINDOW_S = 300
"""The throughput window: long enough to smooth bursts, short enough to show a stall."""


@dataclass(frozen=True, slots=True)
class QueueOverview:
    name: str
    counts: dict[str, int]
    completed_recent: int
    failed_recent: int
    window_s: int
    paused: bool
    """Queue-wide (an operator's control), shown to every organisation as the API's GET /queues."""
    workers: int
    """Live workers serving the queue (fleet-wide, as GET /api/v1/workers counts them)."""

    @property
    def throughput_per_min(self) -> float:
        return round((self.completed_recent + self.failed_recent) * 60 / self.window_s, 2)

    @property
    def failure_rate(self) -> float | None:
        """Failed over finished in the window; None when nothing finished (not 0%)."""
        finished = self.completed_recent + self.failed_recent
        return None if finished == 0 else round(self.failed_recent / finished, 4)

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {
            "throughput_per_min": self.throughput_per_min,
            "failure_rate": self.failure_rate,
        }


async def queue_overview(
    queues: QueueService,
    name: QueueName,
    window_s: int = WINDOW_S,
    workers: list[WorkerInfo] | None = None,
) -> QueueOverview:
    """`workers`: the live workers when the caller read them already (once for all queues)."""
    counts, finished, control = await asyncio.gather(
        queues.counts(name),
        queues.finished_within(name, window_s * 1000),
        queues.controls(name).read(),
    )
    if workers is None:
        workers = await queues.workers()
    return QueueOverview(
        name=name.value,
        counts={state.value: counts[state] for state in JobState},
        completed_recent=finished[JobState.COMPLETED],
        failed_recent=finished[JobState.FAILED],
        window_s=window_s,
        paused=control.paused,
        workers=sum(1 for w in workers if name.value in w.queues),
    )


async def overview(
    queues: QueueService, window_s: int = WINDOW_S, names: Iterable[str] | None = None
) -> list[QueueOverview]:
    """Every catalog queue, or those of them in `names` (the queues an event touched)."""
    if names is None:
        wanted = queues.queue_names
    else:
        picked = set(names)  # by wire name: a StrEnum member hashes by its member name
        wanted = [n for n in queues.queue_names if n.value in picked]
    if not wanted:
        return []
    workers = await queues.workers()
    return list(
        await asyncio.gather(*(queue_overview(queues, n, window_s, workers) for n in wanted))
    )
