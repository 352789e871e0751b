"""The three systems under test and their producers. Jobs are no-ops with the same payload
({"n": int, "t": enqueue time}), so what is measured is the job layer, not the work."""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from arq.connections import ArqRedis, RedisSettings, create_pool
from forgestack_queue.keys import QueueKeys
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_shared.catalog import MY_NEW_JOB
from pydantic import BaseModel
from redis.asyncio import Redis

QUEUE = "bench"
PREFIX = "bench"
ARQ_FUNCTION = "noop"
BULK_BATCH = 500
"""Jobs per bulk call: one `add_bulk` script call for us, one `asyncio.gather` of enqueues for arq."""

FORGE_OPTIONS: JobOptions = MY_NEW_JOB.defaults
"""The catalog's defaults for a real queue: 3 attempts with exponential backoff, completed jobs
kept an hour (at most 1,000), failed kept a week (at most 10,000), a 300 s timeout per attempt."""


class BenchData(BaseModel):
    n: int
    t: float
    """time.time() at enqueue: the handler subtracts it from its own start time."""


@dataclass(frozen=True, slots=True)
class System:
    key: str
    label: str
    kind: Literal["arq", "forge"]
    max_jobs: int
    poll_delay_s: float | None
    """arq's polling period; None for ForgeWorker, which blocks on Redis when idle."""


ARQ_DEFAULT = System("arq-default", "raw arq, defaults", "arq", 10, 0.5)
ARQ_TUNED = System("arq-tuned", "raw arq, tuned", "arq", 100, 0.01)
FORGE = System("forge", "ForgeStack", "forge", 100, None)
SYSTEMS = {s.key: s for s in (ARQ_DEFAULT, ARQ_TUNED, FORGE)}


def payload(n: int) -> dict[str, Any]:
    return {"n": n, "t": time.time()}


class Producer(Protocol):
    redis: "Redis"

    async def add_one(self, n: int) -> None: ...
    async def add_many(self, ns: Sequence[int]) -> None: ...
    async def close(self) -> None: ...


class ArqProducer:
    """arq's own client with its defaults (pickle); arq has no bulk add, so its best is concurrent
    `enqueue_job` calls (each still its own WATCH/EXISTS/MULTI exchange) over the pool."""

    def __init__(self, pool: ArqRedis) -> None:
        self.pool = pool
        self.redis: Redis = pool

    async def add_one(self, n: int) -> None:
        await self.pool.enqueue_job(ARQ_FUNCTION, payload(n))

    async def add_many(self, ns: Sequence[int]) -> None:
        await asyncio.gather(*(self.pool.enqueue_job(ARQ_FUNCTION, payload(n)) for n in ns))

    async def close(self) -> None:
        await self.pool.aclose()


class ForgeProducer:
    def __init__(self, redis: "Redis") -> None:
        self.redis = redis
        self.queue = Queue(redis, QUEUE, prefix=PREFIX)

    async def add_one(self, n: int) -> None:
        await self.queue.add(payload(n), FORGE_OPTIONS)

    async def add_many(self, ns: Sequence[int]) -> None:
        await self.queue.add_bulk([(payload(n), FORGE_OPTIONS) for n in ns])

    async def close(self) -> None:
        await self.redis.aclose()


async def open_producer(system: System, url: str) -> Producer:
    if system.kind == "arq":
        return ArqProducer(await create_pool(RedisSettings.from_dsn(url)))
    return ForgeProducer(Redis.from_url(url))


async def fill(system: System, url: str, jobs: int) -> None:
    """Queues `jobs` no-op jobs as fast as the system allows (the untimed setup of a drain)."""
    producer = await open_producer(system, url)
    try:
        for start in range(0, jobs, BULK_BATCH):
            await producer.add_many(range(start, min(jobs, start + BULK_BATCH)))
    finally:
        await producer.close()


def pending_jobs(system: System, ctl: Any) -> int:
    """Jobs not yet finished, read straight from Redis after a drain (must be 0)."""
    if system.kind == "arq":
        return int(ctl.zcard("arq:queue"))
    keys = QueueKeys(PREFIX, QUEUE)
    return int(ctl.zcard(keys.wait) + ctl.zcard(keys.active) + ctl.zcard(keys.delayed))
