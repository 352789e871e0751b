"""The prefetch buffer (prefetch.py): jobs a busy worker claimed ahead are held like running ones
(lease renewed, counted by limits), start their clocks when they run, end cancelled without
running when an operator cancels them, and go back to waiting, attempt not spent, when the
worker stops or pauses."""

import asyncio
import contextlib

import pytest
from forgestack_queue import prefetch
from forgestack_queue.limits import QueueLimits
from forgestack_queue.options import JobOptions
from forgestack_queue.prefetch import RATE_WINDOW_S, Prefetch
from forgestack_queue.producer import Queue
from forgestack_queue.runner import ClaimedJob
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, run_burst_worker, running
from forgestack_queue.worker import ForgeWorker
from redis.asyncio import Redis

from tests.queue.owner_index import assert_indexes_agree
from tests.queue.probe import PROBE, Probe, ProbeData
from tests.queue.until import until


async def _active(queue: Queue) -> int:
    return (await queue.counts())[JobState.ACTIVE]


@pytest.mark.usefixtures("full_buffer")
async def test_a_buffered_job_keeps_its_lease_and_its_clock_starts_when_it_runs(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    """B waits in the buffer behind A for over three lease periods: its lease is renewed (else
    the next claim would recover it and run it as attempt 2), its 0.5 s timeout counts from
    when it runs, and its recorded start is when it ran, not when it was claimed."""
    a = await queue.add(ProbeData(tag="a", mode="sleep", seconds=1.0))
    b = await queue.add(ProbeData(tag="b", mode="sleep", seconds=0.3), JobOptions(timeout=500))
    worker = make_worker(
        redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1, prefetch=1, lease_ms=300
    )
    await _run_checking_b_is_buffered(worker, probe, queue)
    assert probe.tags() == ["a", "b"]
    assert [attempt for _, attempt, _ in probe.runs] == [1, 1]
    rec_a, rec_b = await queue.get_job(a.id), await queue.get_job(b.id)
    assert rec_a is not None and rec_b is not None
    assert rec_b.state is JobState.COMPLETED, rec_b.failed_reason
    assert rec_b.attempts_made == 1
    assert rec_a.processed_at is not None and rec_b.processed_at is not None
    assert rec_a.finished_at is not None
    # Claimed with A (or in the next claim), it ran once A had ended.
    assert (rec_b.processed_at - rec_a.processed_at).total_seconds() >= 0.9
    assert rec_b.processed_at >= rec_a.finished_at.replace(microsecond=0)


async def _run_checking_b_is_buffered(worker: ForgeWorker, probe: Probe, queue: Queue) -> None:
    """Runs `worker` (a burst worker) and checks, while A runs, that B is claimed but not run."""
    task = asyncio.create_task(worker.async_run())
    try:
        await asyncio.wait_for(probe.started.wait(), 5)
        await until(lambda: _count_is(queue, 2))
        assert probe.tags() == ["a"]  # both active in Redis, one running: B is buffered
        await asyncio.wait_for(task, 10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await worker.close()


async def _count_is(queue: Queue, n: int) -> bool:
    return await _active(queue) == n


@pytest.mark.usefixtures("full_buffer")
async def test_an_operator_cancel_ends_a_buffered_job_cancelled_without_running_it(
    queue: Queue, probe: Probe, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    await queue.add(ProbeData(tag="a", mode="sleep", seconds=2.0))
    b = await queue.add(ProbeData(tag="b"), JobOptions(attempts=3))
    worker = make_worker(
        redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1, prefetch=1, burst=False
    )
    async with running(worker):
        await asyncio.wait_for(probe.started.wait(), 5)
        await until(lambda: _count_is(queue, 2))
        await queue.cancel(b.id)

        async def cancelled() -> bool:
            rec = await queue.get_job(b.id)
            return rec is not None and rec.state is JobState.FAILED

        await until(cancelled, 1.5)  # before A ends: it did not wait for a slot
        assert probe.tags() == ["a"]
    rec = await queue.get_job(b.id)
    assert rec is not None and rec.failed_reason == "cancelled"
    assert probe.tags() == ["a"]
    await assert_indexes_agree(redis, queue.keys)


@pytest.mark.usefixtures("full_buffer")
async def test_shutdown_releases_buffered_jobs_without_spending_an_attempt(
    queue: Queue, probe: Probe, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    ids = [
        (await queue.add(ProbeData(tag=tag, mode="sleep", seconds=30), JobOptions(attempts=1))).id
        for tag in "abc"
    ]
    worker = make_worker(
        redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1, prefetch=2, burst=False
    )
    async with running(worker):  # stops it as SIGTERM does
        await asyncio.wait_for(probe.started.wait(), 5)
        await until(lambda: _count_is(queue, 3))
    for job_id in ids:
        rec = await queue.get_job(job_id)
        assert rec is not None and rec.state is JobState.WAITING
        assert rec.attempts_made == 0
    assert await _active(queue) == 0
    assert probe.tags() == ["a"]
    await assert_indexes_agree(redis, queue.keys)


@pytest.mark.usefixtures("full_buffer")
async def test_a_paused_worker_releases_its_buffer_and_keeps_its_running_job(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    a = await queue.add(ProbeData(tag="a", mode="sleep", seconds=1.5))
    others = [(await queue.add(ProbeData(tag=tag))).id for tag in "bc"]
    worker = make_worker(
        redis_url,
        [probe.handler()],
        prefix=queue_prefix,
        max_jobs=1,
        prefetch=2,
        burst=False,
        block_ms=50,
    )
    async with running(worker):
        await asyncio.wait_for(probe.started.wait(), 5)
        await until(lambda: _count_is(queue, 3))
        worker.allow_pick_jobs = False  # what arq does at max_burst_jobs, and a pause
        await until(lambda: _count_is(queue, 1), 1.0)  # released while A still runs
        for job_id in others:
            rec = await queue.get_job(job_id)
            assert rec is not None and rec.state is JobState.WAITING
            assert rec.attempts_made == 0

        async def a_done() -> bool:
            rec = await queue.get_job(a.id)
            return rec is not None and rec.state is JobState.COMPLETED

        await until(a_done)
        await asyncio.sleep(0.2)
        assert probe.tags() == ["a"]  # a paused worker takes nothing new


@pytest.mark.usefixtures("full_buffer")
async def test_a_burst_worker_ends_only_once_its_buffer_is_empty(
    queue: Queue, probe: Probe, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    for i in range(12):
        await queue.add(ProbeData(tag=f"j{i}", mode="sleep", seconds=0.02))
    await run_burst_worker(
        redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=2, prefetch=4
    )
    assert sorted(probe.tags()) == sorted(f"j{i}" for i in range(12))
    assert [attempt for _, attempt, _ in probe.runs] == [1] * 12
    counts = await queue.counts()
    assert counts[JobState.COMPLETED] == 12 and counts[JobState.ACTIVE] == 0
    await assert_indexes_agree(redis, queue.keys)


@pytest.mark.usefixtures("full_buffer")
async def test_a_buffered_job_counts_against_the_queue_concurrency_cap(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    """Cap 2, one slot, a buffer of 5: the worker holds the running job and one buffered, and
    a second worker with free slots gets nothing beyond the cap either."""
    for i in range(6):
        await queue.add(ProbeData(tag=f"j{i}", mode="sleep", seconds=0.15))
    limits = {PROBE: QueueLimits(concurrency=2)}
    one = make_worker(
        redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1, prefetch=5, limits=limits
    )
    two = make_worker(redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=3, limits=limits)
    seen: list[int] = []

    async def watch() -> None:
        while True:
            seen.append(await _active(queue))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.gather(one.async_run(), two.async_run())
    finally:
        watcher.cancel()
        await one.close()
        await two.close()
    assert max(seen) == 2
    assert sorted(probe.tags()) == sorted(f"j{i}" for i in range(6))
    assert [attempt for _, attempt, _ in probe.runs] == [1] * 6


async def test_a_busy_worker_of_short_jobs_prefetches_and_loses_nothing(
    queue: Queue, probe: Probe, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    """The real sizing: short jobs end fast enough for the buffer to grow; each runs once."""
    puts = 0
    real_put = Prefetch.put

    def counting_put(self: Prefetch, job: object) -> None:
        nonlocal puts
        puts += 1
        real_put(self, job)  # type: ignore[arg-type]

    n = 3000
    for start in range(0, n, 1000):
        await queue.add_bulk([(ProbeData(tag=f"j{i}"), None) for i in range(start, start + 1000)])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Prefetch, "put", counting_put)
        await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=50)
    assert puts > 0
    assert sorted(probe.tags()) == sorted(f"j{i}" for i in range(n))
    counts = await queue.counts()
    # Completed jobs beyond the default retention (1,000) are trimmed as they end.
    assert counts[JobState.ACTIVE] == counts[JobState.WAITING] == counts[JobState.FAILED] == 0
    await assert_indexes_agree(redis, queue.keys)


async def test_the_buffer_follows_the_rate_of_ended_attempts_and_its_limit() -> None:
    buffer = Prefetch(50)
    buffer.wrote(0.05)
    assert buffer.target() == 0  # nothing ended yet: a worker of slow jobs buffers nothing
    for _ in range(500):
        buffer.ended()
    await asyncio.sleep(RATE_WINDOW_S + 0.01)
    buffer.ended()  # closes the window: about 1,900 ends/s, half weighed in (no earlier rate)
    assert buffer.target() == 50  # ~950/s x 0.05 s x 2 = ~95, capped by the limit
    await asyncio.sleep(2 * RATE_WINDOW_S + 0.01)
    assert buffer.target() == 0  # nothing ended since: the estimate is stale
    assert Prefetch(0).target() == 0


def test_buffered_jobs_reach_their_shelf_life_oldest_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A buffer that outlived its need (its slots stayed busy) gives its jobs back: the shelf
    life is SHELF_LIFE_S, or SHELF_WRITES write waits when writes are slow."""
    clock = [100.0]
    monkeypatch.setattr(prefetch, "perf_counter", lambda: clock[0])
    buffer = Prefetch(4)
    assert buffer.expiring_in() is None and buffer.expired() == []
    first, second = (_claimed(f"j{i}") for i in range(2))
    buffer.put(first)
    clock[0] += 0.04
    buffer.put(second)
    assert buffer.expiring_in() == pytest.approx(prefetch.SHELF_LIFE_S - 0.04)
    clock[0] += prefetch.SHELF_LIFE_S - 0.04
    assert buffer.expired() == [first] and list(buffer) == [second]
    buffer.wrote(0.05)  # slow writes: the shelf life follows them
    assert buffer.shelf_life() == pytest.approx(prefetch.SHELF_WRITES * 0.05)
    clock[0] += prefetch.SHELF_LIFE_S
    assert buffer.expired() == []
    clock[0] += buffer.shelf_life()
    assert buffer.expired() == [second] and len(buffer) == 0


def _claimed(job_id: str) -> ClaimedJob:
    return ClaimedJob(
        id=job_id,
        queue=PROBE,
        name=PROBE,
        data=b"{}",
        options=JobOptions(),
        attempt=1,
        created_at_ms=0,
        token="t",
    )


@pytest.mark.usefixtures("full_buffer")
async def test_a_higher_priority_job_added_later_waits_behind_the_buffer_only(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    """One slot and a buffer of two: D (priority 1) added while A runs and B, C are buffered
    runs before E and F, still waiting (priority 10), behind at most the buffer: here not even
    that, as A outlives the buffer's shelf life and B, C go back to waiting, behind D."""
    low = JobOptions(priority=10)
    await queue.add(ProbeData(tag="a", mode="sleep", seconds=0.4), low)
    for tag in "bcef":
        await queue.add(ProbeData(tag=tag), low)
    worker = make_worker(
        redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1, prefetch=2, burst=False
    )
    async with running(worker):
        await asyncio.wait_for(probe.started.wait(), 5)
        await until(lambda: _count_is(queue, 3))
        await queue.add(ProbeData(tag="d"), JobOptions(priority=1))

        async def all_ran() -> bool:
            return len(probe.tags()) == 6

        await until(all_ran)
    assert probe.tags() == ["a", "d", "b", "c", "e", "f"]
