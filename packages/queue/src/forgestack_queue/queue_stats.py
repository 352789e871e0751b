"""Queue-health snapshots: the count of jobs per queue and state, kept as a bounded history in
Redis so an operator view can graph them without a metrics stack."""

from datetime import UTC, datetime

from pydantic import BaseModel
from redis.asyncio import Redis

from .keys import is_cluster, layout_for
from .producer import known_queues
from .states import JobState

HISTORY_LENGTH = 1_440
"""Snapshots kept: a day at one a minute."""


class QueueCounts(BaseModel):
    at: datetime
    queues: dict[str, dict[JobState, int]]


def history_key(prefix: str) -> str:
    return f"{prefix}:stats:counts"


async def snapshot(redis: Redis, *, prefix: str) -> QueueCounts:
    """Every known queue's counts in one pipelined round trip (plus one for the queue names)."""
    queues = await known_queues(redis, prefix=prefix)
    async with redis.pipeline(transaction=False) as pipe:
        for name in queues:
            for state in JobState:
                pipe.zcard(layout_for(redis, prefix, name).state_set(state))
        values = await pipe.execute() if queues else []
    states = list(JobState)
    counts = {
        name: dict(zip(states, values[i * len(states) : (i + 1) * len(states)], strict=True))
        for i, name in enumerate(queues)
    }
    return QueueCounts(at=datetime.now(UTC), queues=counts)


async def record_snapshot(redis: Redis, *, prefix: str, keep: int = HISTORY_LENGTH) -> QueueCounts:
    counts = await snapshot(redis, prefix=prefix)
    key = history_key(prefix)
    async with redis.pipeline(transaction=not is_cluster(redis)) as pipe:
        pipe.lpush(key, counts.model_dump_json())
        pipe.ltrim(key, 0, keep - 1)
        await pipe.execute()
    return counts


async def history(redis: Redis, *, prefix: str, limit: int = 60) -> list[QueueCounts]:
    """Newest first."""
    raw: list[bytes] = await redis.lrange(history_key(prefix), 0, limit - 1)  # type: ignore[misc]
    return [QueueCounts.model_validate_json(item) for item in raw]
