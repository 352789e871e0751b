"""Retention sweep: applies each queue's `remove_on_complete` / `remove_on_fail` to the jobs
already finished, so jobs that never passed through the finish script's trim (failed by lease
expiry in the claim script, or finished under an older, looser rule) are removed too."""

from collections.abc import Mapping
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import WatchError

from .options import Retention, retention_limits
from .producer import Queue
from .states import JobState

SWEEP_LIMIT = 1_000
"""Jobs removed per queue, state and rule per sweep: bounds the sweep's run time; the next
sweep takes the rest."""


TRIM_TRIES = 3


@dataclass(frozen=True, slots=True)
class QueueRetention:
    completed: Retention
    failed: Retention


async def _trim_to_count(queue: Queue, state: JobState, count: int) -> int:
    """Removes the jobs beyond the newest `count` as clean.lua removes a job (its hash and its
    set entry), under WATCH: if the set changes meanwhile (a job finishes, an operator retries
    one), nothing is removed and the next try, or sweep, starts again from the new set."""
    key = queue.keys.state_set(state)
    for _ in range(TRIM_TRIES):
        async with queue.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                ids = await pipe.zrevrange(key, count, count + SWEEP_LIMIT - 1)
                if not ids:
                    return 0
                pipe.multi()  # type: ignore[no-untyped-call]
                for raw in ids:
                    pipe.delete(queue.keys.job(raw.decode()))
                pipe.zrem(key, *ids)
                await pipe.execute()
                return len(ids)
            except WatchError:
                continue
    return 0


async def sweep_queue(queue: Queue, rules: QueueRetention) -> dict[JobState, int]:
    removed: dict[JobState, int] = {}
    for state, rule in ((JobState.COMPLETED, rules.completed), (JobState.FAILED, rules.failed)):
        count, age_s = retention_limits(rule)
        total = 0
        if age_s >= 0:
            total += await queue.clean(state, age_s, limit=SWEEP_LIMIT)
        if count >= 0:
            total += await _trim_to_count(queue, state, count)
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
