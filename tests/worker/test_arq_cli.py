"""Through arq's real CLI (`arq worker.WorkerSettings`, as `uv run arq` starts it) and real Redis:
`enqueue_job` is served, `--burst`, `--watch` and `--check` work, arq's lines print once."""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from arq.connections import RedisSettings
from arq.jobs import JobStatus
from forgestack_queue.arq_pool import ForgeArqRedis, create_pool
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_shared.catalog import CATALOG
from forgestack_shared.jobs.my_new_job import MyNewJobResult
from forgestack_shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ARQ = [sys.executable, "-m", "arq", "worker.WorkerSettings"]


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[ForgeArqRedis]:
    pool = await create_pool(
        RedisSettings.from_dsn(settings.effective_redis_url),
        queue_prefix=settings.queue_prefix,
        contracts=CATALOG,
    )
    try:
        yield pool
    finally:
        keys = [k async for k in pool.scan_iter(match=f"{settings.queue_prefix}:*", count=1000)]
        if keys:
            await pool.delete(*keys)
        await pool.aclose()


def wait_for_health(settings: Settings, proc: subprocess.Popen[bytes]) -> None:
    client = redis.Redis.from_url(settings.effective_redis_url)
    try:
        deadline = time.monotonic() + 30
        while not client.exists(f"{settings.queue_prefix}:worker:health"):
            assert proc.poll() is None, "worker exited"
            assert time.monotonic() < deadline, "worker never recorded its health"
            time.sleep(0.1)
    finally:
        client.close()


@contextmanager
def cli_worker(
    settings: Settings, *flags: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [*ARQ, *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env or os.environ.copy(),
        cwd=cwd,
    )
    try:
        wait_for_health(settings, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def test_enqueue_job_is_served_by_the_cli_worker_with_arqs_options(
    settings: Settings, pool: ForgeArqRedis
) -> None:
    with cli_worker(settings):
        job = await pool.enqueue_job("my-new-job", user_id="u1", action="ok", _job_id="first")
        assert job is not None and job.job_id == "first"
        result = await job.result(timeout=20)
        assert isinstance(result, MyNewJobResult) and result.success
        assert (
            await pool.enqueue_job("my-new-job", user_id="u1", action="ok", _job_id="first") is None
        )

        loop = asyncio.get_running_loop()
        started = loop.time()
        deferred = await pool.enqueue_job("my-new-job", user_id="u2", action="ok", _defer_by=2)
        assert deferred is not None
        assert await deferred.status() is JobStatus.deferred
        await deferred.result(timeout=20)
        assert loop.time() - started >= 1.8
        info = await deferred.result_info()
        assert info is not None and info.success


async def test_burst_drains_and_exits(settings: Settings, pool: ForgeArqRedis) -> None:
    jobs = [await pool.enqueue_job("my-new-job", user_id=f"u{i}", action="ok") for i in range(5)]
    proc = await asyncio.to_thread(
        subprocess.run, [*ARQ, "--burst"], capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for job in jobs:
        assert job is not None and await job.status() is JobStatus.complete
    counts = await Queue(pool, "my-new-job", prefix=settings.queue_prefix).counts()
    assert counts[JobState.COMPLETED] == 5


def test_arqs_log_lines_are_printed_once(settings: Settings) -> None:
    check = subprocess.run(
        [*ARQ, "--check"], capture_output=True, text=True, timeout=30, check=False
    )
    assert check.returncode == 1
    assert (check.stdout + check.stderr).count("Health check failed") == 1
    with cli_worker(settings) as proc:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0].decode()
    assert output.count("Setting allow_pick_jobs to `False`") == 1, output
    assert output.count("shutdown on SIGTERM, wait complete") == 1, output


async def test_watch_runs_the_edited_handler(
    settings: Settings, pool: ForgeArqRedis, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "apps" / "worker" / "src", src, ignore=shutil.ignore_patterns("*.pyc"))
    handler = src / "forgestack_worker" / "handlers" / "my_new_job.py"
    env = os.environ.copy() | {"PYTHONPATH": str(src)}
    with cli_worker(settings, "--watch", str(src), env=env, cwd=tmp_path) as proc:
        job = await pool.enqueue_job("my-new-job", user_id="u", action="ok")
        assert job is not None and (await job.result(timeout=20)).success
        text = handler.read_text()
        assert "success=True" in text
        handler.write_text(text.replace("success=True", "success=False"))
        deadline = time.monotonic() + 40
        while True:
            job = await pool.enqueue_job("my-new-job", user_id="u", action="ok")
            assert job is not None
            if not (await job.result(timeout=30)).success:
                break
            assert time.monotonic() < deadline, "the edited handler never ran"
            await asyncio.sleep(0.5)
        assert proc.poll() is None, "reloaded in place: the same process keeps serving"


RETRY_APP = """
import os
import time

from arq import Retry
from arq.connections import RedisSettings
from forgestack_queue.arq_cli import use_forge_worker

use_forge_worker()


async def call_partner(ctx, url):
    await ctx["redis"].rpush(f"{os.environ['QUEUE_PREFIX']}:times", time.time())
    if ctx["job_try"] == 1:
        raise Retry(defer=2)
    return {"url": url, "job_id": ctx["job_id"], "try": ctx["job_try"]}


class WorkerSettings:
    functions = [call_partner]
    redis_settings = RedisSettings.from_dsn(os.environ["REDIS_URL"])
    queue_prefix = os.environ["QUEUE_PREFIX"]
"""


async def test_retry_defer_spaces_two_attempts_through_the_cli(
    settings: Settings, pool: ForgeArqRedis, tmp_path: Path
) -> None:
    (tmp_path / "retry_app.py").write_text(RETRY_APP)
    job = await pool.enqueue_job("call_partner", "https://partner.example/hook")
    assert job is not None
    worker = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "arq", "retry_app.WorkerSettings", "--burst"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert worker.returncode == 0, worker.stdout + worker.stderr
    result = await job.result(timeout=5)
    assert result == {"url": "https://partner.example/hook", "job_id": job.job_id, "try": 2}
    times = [float(t) for t in await pool.lrange(f"{settings.queue_prefix}:times", 0, -1)]
    assert len(times) == 2
    assert 1.9 <= times[1] - times[0] <= 3.0, times
