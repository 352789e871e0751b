"""Limits enforced inside the atomic claim across several workers on one Redis: a rate limit per
sliding window, a fleet-wide concurrency cap, a remote hold (RateLimited), operator overrides,
and the cancel flag reaching a running job by lease renewal when its message was missed.

Several ForgeWorkers in one process: what is under test is what Redis enforces between them."""

import asyncio
from typing import Any

from forgestack_queue.controls import QueueControls
from forgestack_queue.errors import RateLimited
from forgestack_queue.job import Job
from forgestack_queue.limits import QueueLimits, RateLimit
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.runner import Handler
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, running
from forgestack_queue.worker import ForgeWorker
from redis.asyncio import Redis

from tests.queue.probe import PROBE, Probe, ProbeData


class Gauge:
    """Counts the probe jobs running at once across every worker of the test."""

    def __init__(self, seconds: float) -> None:
        self.now = self.peak = 0
        self.seconds = seconds

    async def handle(self, job: Job[ProbeData]) -> str:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.now -= 1
        return job.data.tag

    def handler(self) -> Handler[ProbeData, str]:
        return Handler(queue=PROBE, fn=self.handle, data_model=ProbeData)


def count_claims(worker: ForgeWorker, calls: list[int]) -> None:
    """Wraps the worker's claim once it exists, to show idle workers sleep rather than spin."""
    original = worker._claim

    async def counted(want: int) -> Any:
        calls.append(want)
        return await original(want)

    worker._claim = counted  # type: ignore[method-assign]


async def until_done(queue: Queue, total: int, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while (await queue.counts())[JobState.COMPLETED] < total:
            await asyncio.sleep(0.05)


async def test_three_workers_never_start_more_than_the_rate_limit_in_any_window(
    queue: Queue, redis_url: str, queue_prefix: str
) -> None:
    window_ms, most = 400, 3
    limits = {PROBE: QueueLimits(rate_limit=RateLimit(max=most, duration_ms=window_ms))}
    gauge = Gauge(0.0)
    workers = [
        make_worker(redis_url, [gauge.handler()], prefix=queue_prefix, burst=False, limits=limits)
        for _ in range(3)
    ]
    calls: list[int] = []
    for worker in workers:
        count_claims(worker, calls)
    await queue.add_bulk([({"tag": str(i)}, None) for i in range(12)])
    async with running(*workers):
        await until_done(queue, 12, 20)
    page = await queue.get_jobs(JobState.COMPLETED, limit=100)
    starts = sorted(job.processed_at.timestamp() * 1000 for job in page.jobs if job.processed_at)
    assert len(starts) == 12
    for first in starts:
        in_window = [t for t in starts if first <= t < first + window_ms]
        assert len(in_window) <= most, (first, starts)
    assert starts[-1] - starts[0] >= 3 * window_ms - 5  # four windows' worth of starts
    # Idle workers sleep until the window reopens: a handful of claims per window, not a spin.
    assert len(calls) < 80, len(calls)


async def test_three_workers_never_run_more_than_the_cap_at_once(
    queue: Queue, redis_url: str, queue_prefix: str
) -> None:
    gauge = Gauge(0.15)
    limits = {PROBE: QueueLimits(concurrency=2)}
    # A long block: without the wake-up when a capped queue has room, the run would take > 5 s.
    workers = [
        make_worker(
            redis_url,
            [gauge.handler()],
            prefix=queue_prefix,
            burst=False,
            max_jobs=4,
            limits=limits,
            block_ms=5_000,
        )
        for _ in range(3)
    ]
    await queue.add_bulk([({"tag": str(i)}, None) for i in range(10)])
    async with running(*workers):
        await until_done(queue, 10, 4.5)
    assert gauge.peak == 2


async def test_an_operator_override_replaces_the_catalog_limits_until_cleared(
    queue: Queue, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    controls = QueueControls(redis, PROBE, prefix=queue_prefix)
    await controls.set_limits(QueueLimits(concurrency=1))
    assert (await controls.read()).limits_override == QueueLimits(concurrency=1)
    gauge = Gauge(0.05)
    limits = {PROBE: QueueLimits(concurrency=5)}
    workers = [
        make_worker(redis_url, [gauge.handler()], prefix=queue_prefix, burst=False, limits=limits)
        for _ in range(2)
    ]
    await queue.add_bulk([({"tag": str(i)}, None) for i in range(6)])
    async with running(*workers):
        await until_done(queue, 6, 10)
    assert gauge.peak == 1
    await controls.clear_limits()
    assert (await controls.read()).limits_override is None


async def test_a_remote_rate_limit_holds_the_queue_without_spending_an_attempt(
    queue: Queue, redis_url: str, queue_prefix: str
) -> None:
    starts: list[tuple[str, int, float]] = []

    async def handle(job: Job[ProbeData]) -> str:
        starts.append((job.data.tag, job.attempt, asyncio.get_running_loop().time()))
        if job.data.tag == "x" and len(starts) == 1:
            raise RateLimited(600)
        return job.data.tag

    handler = Handler(queue=PROBE, fn=handle, data_model=ProbeData)
    x = await queue.add({"tag": "x"}, JobOptions(attempts=1))
    workers = [
        make_worker(redis_url, [handler], prefix=queue_prefix, burst=False) for _ in range(2)
    ]
    async with running(*workers):
        async with asyncio.timeout(5):
            # The hold lands with x's outcome (the group commit), a few ms after x started.
            while not await queue.redis.hexists(queue.keys.ctl, "hold_until"):  # type: ignore[misc]
                await asyncio.sleep(0.005)
        await queue.add({"tag": "y"})  # added during the hold: it waits too
        await until_done(queue, 2, 10)
    assert starts[0][:2] == ("x", 1)
    assert all(t - starts[0][2] >= 0.55 for _, _, t in starts[1:]), starts
    record = await queue.get_job(x.id)
    assert record is not None and record.state is JobState.COMPLETED
    assert record.attempts_made == 1  # with attempts=1, a spent attempt would have failed it


async def test_a_missed_cancel_message_reaches_the_job_by_lease_renewal(
    queue: Queue, redis: Redis, redis_url: str, queue_prefix: str, probe: Probe
) -> None:
    added = await queue.add({"tag": "slow", "mode": "sleep", "seconds": 30}, JobOptions(attempts=3))
    worker = make_worker(
        redis_url, [probe.handler()], prefix=queue_prefix, burst=False, lease_ms=3_000
    )
    async with running(worker):
        async with asyncio.timeout(5):
            await probe.started.wait()
        # The flag alone, as if the worker's subscription was down when cancel.lua published.
        await redis.hset(queue.keys.job(added.id), "cancel", "1")  # type: ignore[misc]
        async with asyncio.timeout(3):
            while (record := await queue.get_job(added.id)) and record.state is JobState.ACTIVE:
                await asyncio.sleep(0.05)
    assert record is not None and record.state is JobState.FAILED
    assert record.failed_reason == "cancelled"
    assert probe.ended == [("slow", 1)]
    assert [tag for tag, _, _ in probe.runs] == ["slow"]
