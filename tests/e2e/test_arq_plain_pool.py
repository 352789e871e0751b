"""arq's own `create_pool` (pickle, arq's own keys) against the worker as the README starts it,
`uv run arq worker.WorkerSettings`, with `WORKER_ARQ_PICKLE=true`: calls complete with their
typed result, `_defer_by`, `_job_id` and `JobStatus` behave as in arq, and an invalid payload is
a failed job of its queue whose `Job.result()` raises."""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import JobResult, JobStatus
from arq.worker import JobExecutionFailed
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_shared.jobs.my_new_job import MyNewJobResult
from redis.asyncio import Redis

from tests.conftest import free_port, start_redis_server

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "fsarq"
QUEUE = "my-new-job"


def _arq_command() -> list[str]:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv:
        return [uv, "run", "--no-sync", "arq", "worker.WorkerSettings"]
    return [str(Path(sys.executable).parent / "arq"), "worker.WorkerSettings"]


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[str, Path]]:
    """A Redis of its own (arq's queue name is global to a Redis) and the worker, started once."""
    workdir = Path(tempfile.mkdtemp(prefix="fs-arq-plain-"))
    port = free_port()
    server = start_redis_server(port, workdir)
    url = f"redis://127.0.0.1:{port}/0"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {
        "REDIS_URL": url,
        "QUEUE_PREFIX": PREFIX,
        "FORGESTACK_DATA_DIR": str(workdir / "data"),
        "WORKER_ARQ_PICKLE": "true",
        "LOG_LEVEL": "INFO",
    }
    log_path = workdir / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            _arq_command(), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while b"serving queues" not in log_path.read_bytes():
            assert worker.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
        yield url, log_path
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
async def pool(stack: tuple[str, Path]) -> AsyncIterator[ArqRedis]:
    """arq's own pool, exactly as an arq app makes it."""
    pool = await create_pool(RedisSettings.from_dsn(stack[0]))
    try:
        yield pool
    finally:
        await pool.aclose()


@pytest.fixture
async def redis(stack: tuple[str, Path]) -> AsyncIterator[Redis]:
    client = Redis.from_url(stack[0])
    try:
        yield client
    finally:
        await client.aclose()


async def test_a_plain_pools_call_completes_with_its_typed_result(
    pool: ArqRedis, redis: Redis
) -> None:
    job = await pool.enqueue_job(QUEUE, user_id="plain", action="greet")
    assert job is not None
    result = await job.result(timeout=30, poll_delay=0.05)
    assert isinstance(result, MyNewJobResult)
    assert result.success is True
    assert await job.status() == JobStatus.complete
    record = await Queue(redis, QUEUE, prefix=PREFIX).get_job(job.job_id)
    assert record is not None
    assert (record.state, record.owner) == (JobState.COMPLETED, None)
    assert record.data == {"user_id": "plain", "action": "greet", "payload": {}}


async def test_defer_by_starts_the_call_two_seconds_later(pool: ArqRedis) -> None:
    job = await pool.enqueue_job(QUEUE, user_id="plain", action="greet", _defer_by=2)
    assert job is not None
    assert await job.status() == JobStatus.deferred
    await job.result(timeout=30, poll_delay=0.05)
    info = await job.result_info()
    assert isinstance(info, JobResult)
    assert (info.start_time - info.enqueue_time).total_seconds() >= 2.0


async def test_a_second_call_with_the_same_job_id_returns_none(pool: ArqRedis) -> None:
    job = await pool.enqueue_job(QUEUE, user_id="plain", action="greet", _job_id="plain-once")
    assert job is not None
    assert await pool.enqueue_job(QUEUE, user_id="x", action="y", _job_id="plain-once") is None
    await job.result(timeout=30, poll_delay=0.05)
    assert await pool.enqueue_job(QUEUE, user_id="x", action="y", _job_id="plain-once") is None


async def test_an_invalid_payload_fails_visibly_and_result_raises(
    pool: ArqRedis, redis: Redis
) -> None:
    job = await pool.enqueue_job(QUEUE, user_id="plain")  # no action
    assert job is not None
    with pytest.raises(JobExecutionFailed, match="validation error for MyNewJobData"):
        await job.result(timeout=30, poll_delay=0.05)
    failed = await Queue(redis, QUEUE, prefix=PREFIX).get_jobs(JobState.FAILED)
    [record] = [r for r in failed.jobs if r.id == job.job_id]
    assert record.failed_reason is not None and "action" in record.failed_reason


async def test_status_goes_queued_in_progress_complete(pool: ArqRedis) -> None:
    job = await pool.enqueue_job(QUEUE, user_id="plain", action="sleep", payload={"seconds": 1.5})
    assert job is not None
    seen = [await job.status()]
    deadline = time.monotonic() + 30
    while seen[-1] != JobStatus.complete and time.monotonic() < deadline:
        status = await job.status()
        if status != seen[-1]:
            seen.append(status)
        await asyncio.sleep(0.02)
    assert seen == [JobStatus.queued, JobStatus.in_progress, JobStatus.complete]
