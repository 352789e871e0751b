"""Chaos on the local cluster: a worker process killed with jobs in flight, every client
connection dropped while jobs run. Every job must end completed exactly once (a run cut short by
the kill may start again: at least once), none lost."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from redis.asyncio.cluster import RedisCluster

from tests.cluster.chaos_worker import ChaosData

ROOT = Path(__file__).resolve().parents[2]
JOBS_PER_QUEUE = 20
LEASE_MS = 1000
RETRIED = JobOptions(attempts=3)
"""A lost lease spends an attempt: with one attempt the killed worker's jobs would end failed."""


def start_worker(cluster_url: str, prefix: str, queues: list[str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CLUSTER_URL": cluster_url,
        "QUEUE_PREFIX": prefix,
        "QUEUES": ",".join(queues),
        "WORKER_LEASE_MS": str(LEASE_MS),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.cluster.chaos_worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def log_lines(cluster: RedisCluster, prefix: str) -> list[str]:
    lines = await cluster.lrange(f"{prefix}:test:{{chaos}}:log", 0, -1)  # type: ignore[misc]
    return [line.decode() for line in lines]


async def drop_connections(cluster: RedisCluster) -> None:
    for node in cluster.get_primaries():
        await cluster.execute_command("CLIENT", "KILL", "TYPE", "normal", target_nodes=node)


async def test_killed_worker_and_dropped_connections_lose_no_job(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str, cluster_url: str
) -> None:
    queues = [Queue(cluster, q, prefix=queue_prefix) for q in spread_queues]
    tags = []
    for queue in queues:
        batch = [
            (ChaosData(tag=f"{queue.name}-{i}", seconds=0.1), RETRIED)
            for i in range(JOBS_PER_QUEUE)
        ]
        await queue.add_bulk(batch)
        tags += [data.tag for data, _ in batch]
    first = start_worker(cluster_url, queue_prefix, spread_queues)
    second = None
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while sum(line.startswith("end") for line in await log_lines(cluster, queue_prefix)) < 8:
            assert loop.time() < deadline, "the first worker ran nothing"
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)  # jobs in flight, leases held
        first.wait(timeout=10)
        second = start_worker(cluster_url, queue_prefix, spread_queues)
        await asyncio.sleep(0.8)
        # The second worker's connections too, mid-run (the killing one may be among them).
        with contextlib.suppress(Exception):
            await drop_connections(cluster)
        done = 0
        while done < len(tags):
            assert loop.time() < deadline + 30, f"{done} of {len(tags)} jobs ended"
            await asyncio.sleep(0.1)
            counts = [await q.counts() for q in queues]
            done = sum(c[JobState.COMPLETED] + c[JobState.FAILED] for c in counts)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    raise
    counts = [await q.counts() for q in queues]
    assert sum(c[JobState.COMPLETED] for c in counts) == len(tags)
    assert all(c[JobState.ACTIVE] == c[JobState.WAITING] == 0 for c in counts)
    lines = await log_lines(cluster, queue_prefix)
    starts = Counter(line.split()[1] for line in lines if line.startswith("start"))
    ends = Counter(line.split()[1] for line in lines if line.startswith("end"))
    assert set(starts) == set(tags)
    # Completed exactly once in the records; a run the kill cut short started again (<= the
    # first worker's 4 slots, plus any claim in flight when connections dropped).
    repeated = [t for t, n in starts.items() if n > 1]
    assert len(repeated) <= 8, repeated
    for queue in queues:
        page = await queue.get_jobs(JobState.COMPLETED, limit=100)
        assert len({job.id for job in page.jobs}) == JOBS_PER_QUEUE
        assert all(job.state is JobState.COMPLETED for job in page.jobs)
    assert all(ends[t] >= 1 for t in tags)
