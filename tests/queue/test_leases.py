"""Crash recovery by lease, release on shutdown, and the token that fences off a lost worker."""

import asyncio
import contextlib
import json

from forgestack_queue.keys import job_key_prefix, queue_key_prefix
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, run_burst_worker

from tests.queue.probe import PROBE, Probe, ProbeData


async def _claim_as_dead_worker(queue: Queue, lease_ms: int) -> list[bytes]:
    """What a worker does just before it is SIGKILLed: claims, then never reports back."""
    k = queue.keys
    reply = await scripts_for(queue.redis).claim(
        keys=list(k.claim_keys),
        args=[job_key_prefix(queue.prefix), 1, lease_ms, "dead", 0, PROBE],
    )
    return list(reply[2])


async def test_a_job_whose_worker_died_is_recovered_after_its_lease(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="orphan"), JobOptions(attempts=3))
    row = await _claim_as_dead_worker(queue, lease_ms=200)
    assert row[0].decode() == added.id
    assert (await queue.counts())[JobState.ACTIVE] == 1
    await asyncio.sleep(0.25)
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.COMPLETED
    assert probe.runs == [("orphan", 2, probe.runs[0][2])]
    assert job.attempts_made == 2


async def test_a_lost_attempt_on_the_last_try_fails_with_the_reason(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="orphan"), JobOptions(attempts=1))
    await _claim_as_dead_worker(queue, lease_ms=100)
    await asyncio.sleep(0.15)
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.FAILED
    assert job.failed_reason == "worker lost: lease expired during attempt 1"
    assert probe.runs == []


async def test_a_live_job_keeps_its_lease_while_it_runs(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    """Leases are renewed: a job running four lease periods is never taken from its worker."""
    added = await queue.add(ProbeData(tag="long", mode="sleep", seconds=1.2))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix, lease_ms=300)
    assert len(probe.runs) == 1
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.COMPLETED


async def test_shutdown_releases_running_jobs_without_spending_an_attempt(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="slow", mode="sleep", seconds=30), JobOptions(attempts=1))
    worker = make_worker(redis_url, [probe.handler()], prefix=queue_prefix, burst=False)
    running = asyncio.create_task(worker.async_run())
    await asyncio.wait_for(probe.started.wait(), 5)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    await worker.close()
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.WAITING
    assert job.attempts_made == 0
    assert (await queue.counts())[JobState.ACTIVE] == 0


async def test_a_worker_that_lost_its_lease_cannot_overwrite_the_job(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="x"), JobOptions(attempts=3))
    dead = await _claim_as_dead_worker(queue, lease_ms=50)
    await asyncio.sleep(0.1)
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    row = [PROBE, added.id, dead[7].decode(), "failed", "late", "", -1, -1, 0]
    late = await scripts_for(queue.redis).finish(
        args=[job_key_prefix(queue.prefix), queue_key_prefix(queue.prefix), json.dumps([row])],
    )
    assert late == [0]
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.COMPLETED


async def test_an_attempt_that_lost_its_lease_no_longer_renews_the_next_holders_lease(
    queue: Queue,
) -> None:
    added = await queue.add(ProbeData(tag="x"), JobOptions(attempts=3))
    stale = await _claim_as_dead_worker(queue, lease_ms=50)
    await asyncio.sleep(0.1)
    current = await _claim_as_dead_worker(queue, lease_ms=1_000)  # recovered and claimed again
    assert current[0] == stale[0] and current[7] != stale[7]
    lease = await queue.redis.zscore(queue.keys.active, added.id)
    extend = scripts_for(queue.redis).extend
    args = [job_key_prefix(queue.prefix), 60_000]
    assert (await extend(keys=[queue.keys.active], args=[*args, added.id, stale[7]]))[0] == 0
    assert await queue.redis.zscore(queue.keys.active, added.id) == lease
    assert (await extend(keys=[queue.keys.active], args=[*args, added.id, current[7]]))[0] == 1
    assert (await queue.redis.zscore(queue.keys.active, added.id) or 0) > (lease or 0) + 50_000
