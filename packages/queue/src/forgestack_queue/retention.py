"""Retention sweep: applies each queue's `remove_on_complete` / `remove_on_fail` to the jobs
already finished, so jobs that finished under another rule (enqueued with looser options, or
kept by an older version of the scripts) are removed too."""

from collections.abc import Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

from .options import Retention, retention_limits
from .producer import Queue
from .states import JobState

SWEEP_LIMIT = 1_000
"""Jobs one `Queue.trim` call removes at most: bounds each Lua call's run time."""
MAX_CALLS = 20
"""Trim calls per queue and state per sweep; a larger backlog goes on at the next sweep."""


@dataclass(frozen=True, slots=True)
class QueueRetention:
    completed: Retention
    failed: Retention


async def sweep_queue(queue: Queue, rules: QueueRetention) -> dict[JobState, int]:
    """`Queue.trim` is the finish script's own retention code, run over the whole set, so
    per-owner indexes stay in step and the rule means exactly what it means at finish time."""
    removed: dict[JobState, int] = {}
    for state, rule in ((JobState.COMPLETED, rules.completed), (JobState.FAILED, rules.failed)):
        count, age_s = retention_limits(rule)
        total = 0
        if count >= 0 or age_s >= 0:
            for _ in range(MAX_CALLS):
                n = await queue.trim(
                    state,
                    count=None if count < 0 else count,
                    age_s=None if age_s < 0 else age_s,
                    limit=SWEEP_LIMIT,
                )
                total += n
                if n < SWEEP_LIMIT:
                    break
        removed[state] = total
    return removed


async def sweep_retention(
    redis: Redis, rules: Mapping[str, QueueRetention], *, prefix: str
) -> dict[str, dict[JobState, int]]:
    """Every queue with a rule; a queue without one keeps its jobs (nothing says how long)."""
    return {
        name: await sweep_queue(Queue(redis, name, prefix=prefix), rule)
        for name, rule in rules.items()
    }
