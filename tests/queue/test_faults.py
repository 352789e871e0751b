"""Faults the worker must survive: a Redis restart, handlers that misbehave, malformed records."""

import asyncio
import contextlib
import random
import shutil
import tempfile
from pathlib import Path

import pytest
from arq.worker import func
from forgestack_queue.arq_functions import FunctionHandler
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, run_burst_worker, running
from forgestack_queue.worker import ForgeWorker
from redis.asyncio import Redis

from tests.conftest import free_port, start_redis_server
from tests.queue.probe import PROBE, Probe, ProbeData
from tests.queue.reply_proxy import reply_dropping_proxy


async def _wait_for(queue: Queue, job_id: str, state: JobState, seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        job = await queue.get_job(job_id)
        if job is not None and job.state is state:
            return
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.05)


async def test_a_worker_keeps_serving_across_a_redis_restart(probe: Probe) -> None:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="fs-fault-"))
    server = start_redis_server(port, workdir)
    url = f"redis://127.0.0.1:{port}/0"
    client = Redis.from_url(url)
    queue = Queue(client, PROBE, prefix="fault")
    worker = make_worker(url, [probe.handler()], prefix="fault", burst=False)
    try:
        async with running(worker):
            first = await queue.add(ProbeData(tag="before"))
            await _wait_for(queue, first.id, JobState.COMPLETED, 10)
            server.terminate()
            server.wait(timeout=10)
            await asyncio.sleep(0.5)
            server = start_redis_server(port, workdir)
            await client.connection_pool.disconnect()
            second = await queue.add(ProbeData(tag="after"))
            await _wait_for(queue, second.id, JobState.COMPLETED, 15)
        assert probe.tags() == ["before", "after"]
    finally:
        await client.aclose()
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


async def test_a_handler_raising_cancelled_error_spends_its_attempts(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="x", mode="cancel-itself"), JobOptions(attempts=2))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert len(probe.runs) == 2
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.FAILED
    assert job.failed_reason == "CancelledError"


async def test_a_reason_with_undecodable_bytes_is_stored_escaped(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    bad = await queue.add(ProbeData(tag="bad", mode="undecodable-reason"))
    good = await queue.add(ProbeData(tag="good"))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    job = await queue.get_job(bad.id)
    assert job is not None and job.state is JobState.FAILED
    assert job.failed_reason == "OSError: cannot open caf\\udce9.txt"
    done = await queue.get_job(good.id)
    assert done is not None and done.state is JobState.COMPLETED


async def test_a_handlers_own_timeout_error_keeps_its_message(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="x", mode="own-timeout"), JobOptions(timeout=30_000))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    job = await queue.get_job(added.id)
    assert job is not None
    assert job.failed_reason == "TimeoutError: connect timed out"


async def test_a_record_missing_fields_fails_alone_and_the_others_run(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    await queue.redis.hset(queue.keys.job("broken"), mapping={"id": "broken", "priority": "0"})
    await queue.redis.zadd(queue.keys.wait, {"broken": 0})
    healthy = await queue.add_bulk([(ProbeData(tag=str(i)), None) for i in range(3)])
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert sorted(probe.tags()) == ["0", "1", "2"]
    broken = await queue.get_job("broken")
    assert broken is not None and broken.state is JobState.FAILED
    assert broken.failed_reason == "PayloadError: job record has no data field"
    for added in healthy:
        job = await queue.get_job(added.id)
        assert job is not None and job.state is JobState.COMPLETED


def test_plain_arq_functions_are_served_not_silently_ignored(redis_url: str) -> None:
    """Each becomes the handler of the queue named after it (run end to end in test_arq_pool)."""

    async def plain(ctx: dict[str, object]) -> None:
        return None

    worker = ForgeWorker([plain], handle_signals=False)
    assert isinstance(worker.handlers[plain.__qualname__], FunctionHandler)  # arq names it so
    with pytest.raises(ValueError, match="two handlers"):
        ForgeWorker([plain, func(plain, name=plain.__qualname__)], handle_signals=False)


async def test_chaos_handlers_ignoring_cancellation_never_hold_jobs_slots_or_shutdown(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    """A seeded mix of quick jobs and jobs whose handler ignores its timeout's cancellation for a
    while, through two slots: every job ends (the stuck ones retried or failed), none stays active,
    and the worker stops within its grace while abandoned handlers still run."""
    rng = random.Random(14)
    added = []
    for i in range(16):
        stuck = rng.random() < 0.4
        data = (
            ProbeData(tag=str(i), mode="swallow-cancel", seconds=rng.uniform(0.3, 1.5))
            if stuck
            else ProbeData(tag=str(i), mode="sleep", seconds=rng.uniform(0, 0.1))
        )
        added.append(await queue.add(data, JobOptions(timeout=150, attempts=rng.choice([1, 2]))))
    worker = make_worker(
        redis_url,
        [probe.handler()],
        prefix=queue_prefix,
        burst=False,
        max_jobs=2,
        lease_ms=500,
        cancel_grace_ms=150,
    )
    task = asyncio.create_task(worker.async_run())
    for job in added:
        await _wait_for_any(queue, job.id, {JobState.COMPLETED, JobState.FAILED}, 15)
    assert (await queue.counts())[JobState.ACTIVE] == 0
    for job in added:
        record = await queue.get_job(job.id)
        assert record is not None and 1 <= record.attempts_made <= record.options.attempts
        if record.state is JobState.FAILED:
            assert record.failed_reason and record.failed_reason.startswith("timed out")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.wait_for(worker.close(), 1.5)
    deadline = asyncio.get_running_loop().time() + 5
    while len(probe.ended) < len(probe.runs):  # let abandoned handlers finish before the loop ends
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


async def test_chaos_lost_claim_replies_never_cost_an_attempt(
    queue: Queue, probe: Probe, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    """One claim reply in two is lost, six times, while jobs arrive in bursts: every job runs
    exactly once, on its first and only attempt."""
    await redis.script_load(scripts_for(redis).claim.script)
    added = []
    async with reply_dropping_proxy(redis_url) as (proxy, url):
        proxy.drop_replies_to(scripts_for(redis).claim.sha.encode(), times=6, every=2)
        worker = make_worker(
            url,
            [probe.handler()],
            prefix=queue_prefix,
            burst=False,
            max_jobs=3,
            lease_ms=400,
            block_ms=100,
        )
        async with running(worker):
            for burst in range(6):
                added += await queue.add_bulk(
                    [(ProbeData(tag=f"{burst}-{i}"), JobOptions(attempts=1)) for i in range(5)]
                )
                await asyncio.sleep(0.15)
            for job in added:
                await _wait_for_any(queue, job.id, {JobState.COMPLETED, JobState.FAILED}, 15)
    assert proxy.dropped == 6
    assert sorted(probe.tags()) == sorted(f"{b}-{i}" for b in range(6) for i in range(5))
    for job in added:
        record = await queue.get_job(job.id)
        assert record is not None and record.state is JobState.COMPLETED, record
        assert record.attempts_made == 1


async def _wait_for_any(queue: Queue, job_id: str, states: set[JobState], seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        job = await queue.get_job(job_id)
        if job is not None and job.state in states:
            return
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.05)
