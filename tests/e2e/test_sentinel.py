"""REDIS_URL naming a Sentinel set: the API and the worker find the master through the sentinel,
and when the master dies while jobs run, the worker follows the failover and no job is lost."""

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from arq.connections import create_pool
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import running
from forgestack_queue.worker import ForgeWorker
from forgestack_shared.redis_url import parse_redis_url

from tests.conftest import free_port
from tests.queue.probe import PROBE, Probe, ProbeData
from tests.sentinel import SentinelSet

ROOT = Path(__file__).resolve().parents[2]
KEY = "sentinel-admin-key"


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[SentinelSet]:
    workdir = tmp_path / "sentinel"
    workdir.mkdir()
    started = SentinelSet(workdir)
    try:
        yield started.start()
    finally:
        started.stop()


def _command(*argv: str) -> list[str]:
    uv = os.environ.get("UV") or shutil.which("uv")
    return [uv, "run", "--no-sync", *argv] if uv else [*argv]


def test_api_and_worker_run_a_job_through_the_sentinel(
    sentinel_set: SentinelSet, queue_prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}} | {
        "REDIS_URL": sentinel_set.url,
        "QUEUE_PREFIX": queue_prefix,
        "API_PORT": str(port),
        "FORGESTACK_ADMIN_API_KEY": KEY,
        "FORGESTACK_DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "INFO",
    }
    log = (tmp_path / "procs.log").open("wb")
    procs = [
        subprocess.Popen(_command(*argv), cwd=ROOT, env=env, stdout=log, stderr=log)
        for argv in (("api",), ("arq", "worker.WorkerSettings"))
    ]
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {KEY}"}
        ) as client:
            job = _enqueue_and_wait(client, procs)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=20)
        log.close()
    assert job["state"] == "completed", (tmp_path / "procs.log").read_text()
    master = sentinel_set.client("master")
    assert master.exists(f"{queue_prefix}:job:{job['id']}")


def _enqueue_and_wait(
    client: httpx.Client, procs: list[subprocess.Popen[bytes]]
) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while True:
        assert all(p.poll() is None for p in procs), "a process exited"
        try:
            if client.get("/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the API did not become ready"
        time.sleep(0.1)
    response = client.post(
        "/api/v1/queues/my-new-job/jobs", json={"data": {"user_id": "s", "action": "greet"}}
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 30
    while True:
        job: dict[str, object] = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] == "completed" or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


RETRIED = JobOptions(attempts=3)
"""An attempt running when the master dies may be lost with it (its outcome cannot be written, and
asynchronous replication may drop the last writes): the job runs again, as production jobs do."""


async def _add_until_accepted(queue: Queue, tag: str) -> None:
    """A producer's retry: an add that raised was not accepted, so it is sent again."""
    for _ in range(200):
        try:
            await queue.add(ProbeData(tag=tag, mode="sleep", seconds=0.01), RETRIED)
            return
        except Exception:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{tag} was never accepted")


async def _wait_until_all_completed(queue: Queue, total: int, seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        counts = await queue.counts()
        if counts[JobState.COMPLETED] == total:
            return
        assert asyncio.get_running_loop().time() < deadline, counts
        await asyncio.sleep(0.1)


async def test_a_master_failover_while_jobs_run_loses_no_job(
    sentinel_set: SentinelSet, queue_prefix: str
) -> None:
    probe = Probe()
    settings = parse_redis_url(sentinel_set.url)
    pool = await create_pool(settings)
    queue = Queue(pool, PROBE, prefix=queue_prefix)
    before = [f"before-{i}" for i in range(300)]
    for tag in before:
        await queue.add(ProbeData(tag=tag, mode="sleep", seconds=0.01), RETRIED)
    # Replication is asynchronous: what the producer was told is accepted reaches the replica.
    assert await pool.execute_command("WAIT", 1, 5000) == 1

    worker = ForgeWorker(
        handlers=[probe.handler()],
        redis_settings=settings,
        queue_prefix=queue_prefix,
        burst=False,
        max_jobs=5,
        lease_ms=2_000,
        handle_signals=False,
    )
    async with running(worker):
        while len(probe.runs) < 50:
            await asyncio.sleep(0.01)
        old_master = sentinel_set.ports["master"]
        await asyncio.to_thread(sentinel_set.kill_master)
        assert len(probe.runs) < len(before), "the failover came after the work was done"
        assert sentinel_set.master_port() != old_master
        after = [f"after-{i}" for i in range(50)]
        for tag in after:
            await _add_until_accepted(queue, tag)
        await _wait_until_all_completed(queue, len(before) + len(after), seconds=60)

    counts = await queue.counts()
    assert counts[JobState.FAILED] == 0
    assert set(probe.tags()) == set(before) | set(after)
    await pool.aclose()
