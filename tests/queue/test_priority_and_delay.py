"""Priority (lower first, FIFO within one), delay, and both together, with a real worker."""

import asyncio

from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, run_burst_worker, running

from tests.queue.probe import Probe, ProbeData


async def test_priority_one_overtakes_fifty_waiting_priority_ten_jobs(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    worker = make_worker(redis_url, [probe.handler()], prefix=queue_prefix, burst=False, max_jobs=1)
    async with running(worker):
        await queue.add(ProbeData(tag="busy", mode="sleep", seconds=0.3))
        await asyncio.wait_for(probe.started.wait(), 5)
        await queue.add_bulk(
            [(ProbeData(tag=f"p10-{i}"), JobOptions(priority=10)) for i in range(50)]
        )
        await queue.add(ProbeData(tag="p1"), JobOptions(priority=1))
        while (await queue.counts())[JobState.COMPLETED] < 52:
            await asyncio.sleep(0.05)
    assert probe.tags()[:2] == ["busy", "p1"]
    assert probe.tags()[2:] == [f"p10-{i}" for i in range(50)]


async def test_jobs_without_priority_run_before_prioritised_ones_and_keep_fifo(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    await queue.add(ProbeData(tag="p2"), JobOptions(priority=2))
    await queue.add(ProbeData(tag="none-a"))
    await queue.add(ProbeData(tag="p1"), JobOptions(priority=1))
    await queue.add(ProbeData(tag="none-b"))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1)
    assert probe.tags() == ["none-a", "none-b", "p1", "p2"]


async def test_a_delayed_job_does_not_run_before_its_delay(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    loop = asyncio.get_running_loop()
    added_at = loop.time()
    await queue.add(ProbeData(tag="later"), JobOptions(delay=400))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert probe.tags() == ["later"]
    waited = probe.runs[0][2] - added_at
    assert 0.39 <= waited <= 0.6, waited


async def test_a_delayed_job_keeps_its_priority_once_due(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    worker = make_worker(redis_url, [probe.handler()], prefix=queue_prefix, burst=False, max_jobs=1)
    await queue.add(ProbeData(tag="delayed-p1"), JobOptions(delay=200, priority=1))
    await queue.add(ProbeData(tag="busy", mode="sleep", seconds=0.5))
    await queue.add_bulk([(ProbeData(tag=f"p5-{i}"), JobOptions(priority=5)) for i in range(5)])
    async with running(worker):
        while (await queue.counts())[JobState.COMPLETED] < 7:
            await asyncio.sleep(0.05)
    assert probe.tags()[:2] == ["busy", "delayed-p1"]


async def test_an_idle_worker_starts_a_new_job_within_milliseconds(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    """Blocking on Redis, not polling: a job added to an idle worker starts at once."""
    worker = make_worker(redis_url, [probe.handler()], prefix=queue_prefix, burst=False)
    async with running(worker):
        await asyncio.sleep(0.3)
        loop = asyncio.get_running_loop()
        added_at = loop.time()
        await queue.add(ProbeData(tag="now"))
        await asyncio.wait_for(probe.started.wait(), 5)
    assert probe.runs[0][2] - added_at < 0.2
