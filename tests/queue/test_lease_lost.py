"""A lease renewal that finds a job no longer held by this worker's token (its lease lapsed during a
stall longer than the lease, and the job was recovered and claimed elsewhere) says so: a job still
in the prefetch buffer is then not started here, where another worker may already run it."""

import asyncio
import dataclasses
import time

import pytest
from forgestack_queue import prefetch
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.runner import ClaimedJob
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, running
from forgestack_queue.worker import ForgeWorker
from loguru import logger

from tests.queue.probe import PROBE, Probe, ProbeData
from tests.queue.until import until


def _one_slot_one_buffered(
    redis_url: str, probe: Probe, prefix: str, lease_ms: int = 600
) -> ForgeWorker:
    """One job runs in the one slot while another waits in the buffer of one; leases are renewed
    every third of `lease_ms` (0.2 s by default)."""
    return make_worker(
        redis_url,
        [probe.handler()],
        prefix=prefix,
        max_jobs=1,
        prefetch=1,
        burst=False,
        block_ms=50,
        lease_ms=lease_ms,
    )


async def _held_elsewhere(queue: Queue, prefix: str, job_id: str) -> None:
    """What a recovery and another worker's claim leave: the job held by that worker's token,
    under that worker's lease."""
    await queue.redis.hset(f"{prefix}:job:{job_id}", "token", "elsewhere:1")
    await queue.redis.zadd(queue.keys.active, {job_id: int(time.time() * 1000) + 60_000}, xx=True)


@pytest.mark.usefixtures("full_buffer")
async def test_a_buffered_job_whose_lease_was_lost_is_not_started_here(
    queue: Queue,
    probe: Probe,
    redis_url: str,
    queue_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prefetch, "SHELF_LIFE_S", 30.0)  # B stays buffered until A ends
    a = await queue.add(ProbeData(tag="a", mode="sleep", seconds=1.2))
    b = await queue.add(ProbeData(tag="b"))
    worker = _one_slot_one_buffered(redis_url, probe, queue_prefix)
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    try:
        async with running(worker):
            await asyncio.wait_for(probe.started.wait(), 5)

            async def both_active() -> bool:
                return (await queue.counts())[JobState.ACTIVE] == 2

            await until(both_active)  # A runs, B is buffered
            await _held_elsewhere(queue, queue_prefix, b.id)

            async def a_done() -> bool:
                rec = await queue.get_job(a.id)
                return rec is not None and rec.state is JobState.COMPLETED

            await until(a_done)
            await asyncio.sleep(0.3)
    finally:
        logger.remove(sink)
    assert probe.tags() == ["a"], "a job whose lease another worker holds started here"
    assert await queue.redis.hget(f"{queue_prefix}:job:{b.id}", "token") == b"elsewhere:1"
    assert any("lease lost while buffered" in line for line in lines)


async def test_a_running_job_whose_lease_was_lost_is_reported_once(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    """It runs on (stopping it midway helps no one), its outcome is discarded, and the renewals
    that find it lost say so once, not every round."""
    a = await queue.add(ProbeData(tag="a", mode="sleep", seconds=1.0))
    worker = make_worker(
        redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1, burst=False, lease_ms=300
    )
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    try:
        async with running(worker):
            await asyncio.wait_for(probe.started.wait(), 5)
            await _held_elsewhere(queue, queue_prefix, a.id)
            await asyncio.sleep(1.3)
    finally:
        logger.remove(sink)
    assert probe.tags() == ["a"]
    assert sum("lease lost while running" in line for line in lines) == 1
    assert any("outcome was discarded" in line for line in lines)


@pytest.mark.usefixtures("full_buffer")
async def test_a_lost_lease_drops_only_the_attempt_it_was_lost_by(
    queue: Queue,
    probe: Probe,
    redis_url: str,
    queue_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One worker can hold a job twice: an attempt whose lease lapsed in a stall and its fresh
    claim after this worker's own claim recovered it. The renewal finds the stale token lost; the
    fresh claim, which still holds the job, is neither dropped nor released back to waiting."""
    monkeypatch.setattr(prefetch, "SHELF_LIFE_S", 30.0)  # B stays buffered until A ends
    a = await queue.add(ProbeData(tag="a", mode="sleep", seconds=1.2))
    b = await queue.add(ProbeData(tag="b"))
    worker = _one_slot_one_buffered(redis_url, probe, queue_prefix)
    async with running(worker):
        await asyncio.wait_for(probe.started.wait(), 5)

        async def both_active() -> bool:
            return (await queue.counts())[JobState.ACTIVE] == 2

        await until(both_active)  # A runs, B is buffered
        (fresh,) = list(worker._prefetch)
        worker._prefetch.put(dataclasses.replace(fresh, token="stale:1"))

        async def b_done() -> bool:
            rec = await queue.get_job(b.id)
            return rec is not None and rec.state is JobState.COMPLETED

        await until(b_done, 10)
    rec = await queue.get_job(a.id)
    assert rec is not None and rec.state is JobState.COMPLETED
    record = await queue.get_job(b.id)
    assert record is not None
    assert [e.event for e in record.history] == ["added", "started", "completed"]
    assert probe.tags() == ["a", "b"]


@pytest.mark.usefixtures("full_buffer")
async def test_a_buffered_claim_is_kept_when_an_older_attempt_of_its_job_lost_the_lease(
    queue: Queue,
    probe: Probe,
    redis_url: str,
    queue_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker may hold two attempts of one job: its first stalled past the lease, the job was
    recovered and this worker claimed it again (into its buffer). Only the first attempt's token
    lost the job: the renewal must not release the claim that holds it, nor call it lost."""
    monkeypatch.setattr(prefetch, "SHELF_LIFE_S", 30.0)
    x = await queue.add(ProbeData(tag="x", mode="sleep", seconds=3.0), JobOptions(attempts=3))
    worker = _one_slot_one_buffered(redis_url, probe, queue_prefix, lease_ms=1_500)
    key = f"{queue_prefix}:job:{x.id}"
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    try:
        async with running(worker):
            await asyncio.wait_for(probe.started.wait(), 5)
            first = await queue.redis.hget(key, "token")

            async def claimed_again() -> bool:
                if await queue.redis.hget(key, "token") not in (first, None):
                    return True
                # The stall: the first attempt's lease lapses (again, if a renewal beat the claim).
                await queue.redis.zadd(queue.keys.active, {x.id: 1}, xx=True)
                return False

            await until(claimed_again)  # the first attempt runs on; the second is buffered
            second = await queue.redis.hget(key, "token")
            assert second is not None
            await asyncio.sleep(1.2)  # two renewals
            assert await queue.redis.hget(key, "token") == second, "the buffered claim was let go"
    finally:
        logger.remove(sink)
    assert not any("lease lost while buffered" in line for line in lines)
    assert sum("lease lost while running" in line for line in lines) == 1


async def test_an_attempt_that_ended_while_its_renewal_was_out_is_not_reported_lost(
    probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    """Its outcome is already written (which took the job from its token), and the renewal sent
    before then reports it: that is no lease lost, and nothing of it is discarded."""
    worker = make_worker(redis_url, [probe.handler()], prefix=queue_prefix, burst=False)
    job = ClaimedJob(
        id="j1",
        queue=PROBE,
        name=PROBE,
        data=b"{}",
        options=JobOptions(),
        attempt=1,
        created_at_ms=0,
        token="w:1",
    )
    key = f"{job.token}/{job.id}"
    worker._running[key] = job
    worker._settled.add(key)  # its outcome is in the outbox, its task not yet done
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    try:
        worker._leases.lost(job.queue, {(job.id, job.token)})
    finally:
        logger.remove(sink)
    assert not any("lease lost" in line for line in lines)
    await worker.close()
