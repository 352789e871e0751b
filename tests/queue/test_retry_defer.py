"""arq's `Retry(defer=...)` raised by a handler: retried after that delay, counted as an attempt."""

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from arq.worker import Retry
from forgestack_queue.job import Job
from forgestack_queue.options import Backoff, JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.runner import Handler
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker
from pydantic import BaseModel
from redis.asyncio import Redis

DEFERRING = "deferring"


class DeferData(BaseModel):
    defer_ms: int | None = None
    """None raises `Retry()`; else `Retry(defer=...)` with this many milliseconds."""
    as_seconds: bool = False
    """Pass the delay as float seconds instead of a timedelta (arq accepts both)."""
    succeed_on: int = 3


@dataclass
class Deferring:
    times: list[float] = field(default_factory=list)

    async def handle(self, job: Job[DeferData]) -> int:
        self.times.append(asyncio.get_running_loop().time())
        data = job.data
        if job.attempt < data.succeed_on:
            if data.defer_ms is None:
                raise Retry()
            raise Retry(
                defer=data.defer_ms / 1000
                if data.as_seconds
                else timedelta(milliseconds=data.defer_ms)
            )
        return job.attempt

    def handler(self) -> Handler[DeferData, int]:
        return Handler(queue=DEFERRING, fn=self.handle, data_model=DeferData)

    def gaps(self) -> list[float]:
        return [b - a for a, b in itertools.pairwise(self.times)]


@pytest.fixture
def deferring() -> Deferring:
    return Deferring()


@pytest.fixture
def queue(redis: Redis, queue_prefix: str) -> Queue:
    return Queue(redis, DEFERRING, prefix=queue_prefix)


@pytest.mark.parametrize("as_seconds", [False, True], ids=["timedelta", "seconds"])
async def test_retry_defer_delays_the_next_attempt_and_replaces_the_backoff(
    queue: Queue, deferring: Deferring, redis_url: str, queue_prefix: str, as_seconds: bool
) -> None:
    added = await queue.add(
        DeferData(defer_ms=400, as_seconds=as_seconds),
        JobOptions(attempts=5, backoff=Backoff(type="fixed", delay=10)),
    )
    await run_burst_worker(redis_url, [deferring.handler()], prefix=queue_prefix)
    assert len(deferring.times) == 3
    for gap in deferring.gaps():
        assert 0.39 <= gap <= 0.6, deferring.gaps()
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.COMPLETED
    assert job.attempts_made == 3
    assert job.result == 3


async def test_retry_without_defer_falls_back_to_the_backoff(
    queue: Queue, deferring: Deferring, redis_url: str, queue_prefix: str
) -> None:
    await queue.add(DeferData(), JobOptions(attempts=3, backoff=Backoff(type="fixed", delay=300)))
    await run_burst_worker(redis_url, [deferring.handler()], prefix=queue_prefix)
    assert len(deferring.times) == 3
    for gap in deferring.gaps():
        assert 0.29 <= gap <= 0.5, deferring.gaps()


async def test_retry_counts_against_attempts_and_fails_with_the_reason(
    queue: Queue, deferring: Deferring, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(DeferData(defer_ms=50, succeed_on=99), JobOptions(attempts=2))
    await run_burst_worker(redis_url, [deferring.handler()], prefix=queue_prefix)
    assert len(deferring.times) == 2
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.FAILED
    assert job.attempts_made == 2
    assert job.failed_reason == "Retry: <Retry defer 0.05s>"
