"""Operations across worker processes on one Redis: pause and resume reach every worker, a cancel
reaches the running handler on whichever process runs it, and a SIGKILLed worker's job runs
again elsewhere within the bound a 10 s lease promises."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from arq.connections import RedisSettings
from arq.jobs import JobStatus
from forgestack_queue.arq_pool import create_pool
from forgestack_queue.controls import QueueControls
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from redis.asyncio import Redis

OPS = "ops"
"""The queue tests/queue/ops_worker.py serves (not imported: it reads its environment)."""

ROOT = Path(__file__).resolve().parents[2]
Start = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
async def start_worker(
    redis_url: str, queue_prefix: str, redis: Redis, tmp_path: Path
) -> AsyncIterator[Start]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(lease_ms: int = 30_000, max_jobs: int = 4) -> subprocess.Popen[bytes]:
        env = dict(os.environ) | {
            "REDIS_URL": redis_url,
            "QUEUE_PREFIX": queue_prefix,
            "WORKER_LEASE_MS": str(lease_ms),
            "TEST_MAX_JOBS": str(max_jobs),
        }
        log = (tmp_path / f"worker{len(procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "arq", "tests.queue.ops_worker.Settings"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_serving(redis: Redis, queue_prefix: str, count: int) -> None:
    """Until `count` workers have subscribed to their cancel channels (they then claim)."""
    async with asyncio.timeout(30):
        while True:
            channels = await redis.pubsub_channels(f"{queue_prefix}:worker:*")
            if len(channels) >= count:
                return
            await asyncio.sleep(0.1)


async def log(redis: Redis, queue_prefix: str) -> list[str]:
    return [e.decode() for e in await redis.lrange(f"{queue_prefix}:test:log", 0, -1)]


async def wait_for(redis: Redis, queue_prefix: str, entry: str, timeout_s: float) -> float:
    """Until a log entry starts with `entry`; returns when (monotonic)."""
    async with asyncio.timeout(timeout_s):
        while not any(e.startswith(entry) for e in await log(redis, queue_prefix)):
            await asyncio.sleep(0.02)
    return time.monotonic()


@pytest.fixture
def ops(redis: Redis, queue_prefix: str) -> Queue:
    return Queue(redis, OPS, prefix=queue_prefix, owner="acme")


async def test_pause_holds_every_worker_and_resume_releases_them(
    start_worker: Start, ops: Queue, redis: Redis, queue_prefix: str
) -> None:
    start_worker()
    start_worker()
    await wait_serving(redis, queue_prefix, 2)
    await ops.add({"tag": "running", "seconds": 1.5})
    await wait_for(redis, queue_prefix, "start running", 10)
    controls = QueueControls(redis, OPS, prefix=queue_prefix)
    await controls.pause()
    assert (await controls.read()).paused
    await ops.add_bulk([({"tag": f"held{i}"}, None) for i in range(6)])
    await asyncio.sleep(2.5)  # two workers with free slots, their blocks ending every second
    entries = await log(redis, queue_prefix)
    assert "end running" in " ".join(entries)  # the running job finished
    assert not any("held" in e for e in entries), entries
    assert (await ops.counts())[JobState.WAITING] == 6
    await controls.resume()
    async with asyncio.timeout(10):
        while (await ops.counts())[JobState.COMPLETED] < 7:
            await asyncio.sleep(0.05)
    pids = {e.split()[2] for e in await log(redis, queue_prefix) if e.startswith("start held")}
    assert pids  # served again after resume


async def test_a_running_job_is_cancelled_on_the_process_that_runs_it(
    start_worker: Start, ops: Queue, redis: Redis, queue_prefix: str
) -> None:
    start_worker()
    start_worker()
    await wait_serving(redis, queue_prefix, 2)
    added = await ops.add({"tag": "long", "seconds": 60}, JobOptions(attempts=3))
    await wait_for(redis, queue_prefix, "start long", 10)
    asked = time.monotonic()
    record = await ops.cancel(added.id)
    assert record.state is JobState.ACTIVE  # the worker is told; the answer does not wait
    heard = await wait_for(redis, queue_prefix, "cancelled long", 5)
    assert heard - asked < 1.5
    async with asyncio.timeout(5):
        while (record := await ops.get_job(added.id)) and record.state is JobState.ACTIVE:
            await asyncio.sleep(0.05)
    assert record is not None and record.state is JobState.FAILED
    assert record.failed_reason == "cancelled"
    await asyncio.sleep(1.5)  # never retried, although attempts remain
    assert len([e for e in await log(redis, queue_prefix) if e.startswith("start")]) == 1


async def test_a_killed_workers_job_runs_again_within_15_s_with_a_10_s_lease(
    start_worker: Start, ops: Queue, redis: Redis, queue_prefix: str
) -> None:
    first = start_worker(lease_ms=10_000, max_jobs=1)
    await wait_serving(redis, queue_prefix, 1)
    await ops.add({"tag": "victim", "seconds": 60}, JobOptions(attempts=2))
    await wait_for(redis, queue_prefix, "start victim", 10)
    second = start_worker(lease_ms=10_000)
    await wait_serving(redis, queue_prefix, 2)
    # The first worker is full: the second runs this one, slower than a lease, and lives.
    await ops.add({"tag": "slow", "seconds": 14})
    await wait_for(redis, queue_prefix, "start slow", 10)
    first.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    first.wait(timeout=5)
    async with asyncio.timeout(20):
        while sum(e.startswith("start victim") for e in await log(redis, queue_prefix)) < 2:
            await asyncio.sleep(0.05)
    assert time.monotonic() - killed < 15
    await wait_for(redis, queue_prefix, "end slow", 20)
    entries = await log(redis, queue_prefix)
    assert sum(e.startswith("start slow") for e in entries) == 1, entries
    assert second.poll() is None


async def test_arq_abort_cancels_on_whichever_process_and_answers_as_arq(
    start_worker: Start, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    """arq's `Job.abort()` on our jobs: a running job is cancelled on the worker process that
    runs it and abort answers True once it ended cancelled; waiting and delayed jobs too; a job
    that completed first, or none at all, answers False."""
    queue = Queue(redis, OPS, prefix=queue_prefix)
    controls = QueueControls(redis, OPS, prefix=queue_prefix)
    pool = await create_pool(RedisSettings.from_dsn(redis_url), queue_prefix=queue_prefix)
    try:
        start_worker()
        await wait_serving(redis, queue_prefix, 1)
        long = await queue.add({"tag": "long", "seconds": 60}, JobOptions(attempts=3))
        await wait_for(redis, queue_prefix, "start long", 10)
        assert await pool.job(long.id, OPS).abort(timeout=10) is True
        assert any(e.startswith("cancelled long") for e in await log(redis, queue_prefix))
        record = await queue.get_job(long.id)
        assert record is not None and record.state is JobState.FAILED
        assert record.failed_reason == "cancelled" and record.attempts_made == 1

        quick = await queue.add({"tag": "quick"})
        await pool.job(quick.id, OPS).result(timeout=10)
        assert await pool.job(quick.id, OPS).abort(timeout=10) is False
        assert (await queue.get_job(quick.id)).state is JobState.COMPLETED  # type: ignore[union-attr]

        await controls.pause()
        waiting = await queue.add({"tag": "waiting"})
        delayed = await queue.add({"tag": "delayed"}, JobOptions(delay=60_000))
        for added in (waiting, delayed):
            assert await pool.job(added.id, OPS).abort() is True
            assert await pool.job(added.id, OPS).status() is JobStatus.complete
        assert await pool.job("never-was", OPS).abort() is False
    finally:
        await controls.resume()
        await pool.aclose()
    await asyncio.sleep(1.5)  # nothing cancelled ever runs (again)
    started = [e.split()[1] for e in await log(redis, queue_prefix) if e.startswith("start")]
    assert started == ["long", "quick"]
