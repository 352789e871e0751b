"""Redis Cluster row (issue 15, point 4): the same drain on one Redis and on a local 3-master
Redis Cluster, interleaved in one run, as a ratio. N queues (two per master on the cluster) are
filled in bulk, then one in-process burst worker of 100 slots serving all of them drains them
with a no-op handler. Redis CPU per job: the server processes' CPU over the drain.

On this machine (2 CPUs shared by the worker, the Redis processes and other work) a cluster is
not expected to be faster: its gain is a core per primary, which a 2-CPU box does not have. What
the row shows is the cost of the cluster path (one script call per queue, a blocking read per
queue while idle) against one Redis.

`uv run python bench/cluster.py [--quick]` writes its section of bench/RESULTS.md."""

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.cluster's LocalCluster

from forgestack_queue.connect import cluster_client
from forgestack_queue.job import Job
from forgestack_queue.keys import QueueKeys
from forgestack_queue.producer import Queue
from forgestack_queue.runner import Handler
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker
from fsbench import machine
from fsbench.sections import write_section
from fsbench.server import dedicated_redis
from loguru import logger
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from tests.cluster.local_cluster import LocalCluster

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BEGIN, END = "<!-- cluster:begin -->", "<!-- cluster:end -->"
QUEUES_PER_MASTER = 2
MASTERS = 3
TICKS = os.sysconf("SC_CLK_TCK")


class Noop(BaseModel):
    n: int


async def noop(job: Job[Noop]) -> None:
    return None


@dataclass
class Runs:
    rates: list[float] = field(default_factory=list)
    redis_us: list[float] = field(default_factory=list)


def cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def spread_queues(client: RedisCluster, prefix: str) -> list[str]:
    """Queue names whose slots put QUEUES_PER_MASTER on each master."""
    by_master: dict[str, list[str]] = {}
    for i in range(1000):
        name = f"bq{i}"
        slot = client.keyslot(QueueKeys(prefix, name, tagged=True).wait)
        node = str(client.nodes_manager.get_node_from_slot(slot).name)
        names = by_master.setdefault(node, [])
        if len(names) < QUEUES_PER_MASTER:
            names.append(name)
        if sum(len(v) for v in by_master.values()) == QUEUES_PER_MASTER * MASTERS:
            break
    return sorted(n for names in by_master.values() for n in names)


async def drain(
    client: Redis | RedisCluster,
    url: str,
    cluster: bool,
    queues: list[str],
    jobs: int,
    pids: list[int],
) -> tuple[float, float]:
    """(jobs/s, Redis CPU µs per job) of one drain on a fresh prefix."""
    prefix = f"bc{uuid.uuid4().hex[:8]}"
    for name in queues:
        queue = Queue(client, name, prefix=prefix)  # type: ignore[arg-type]
        for start in range(0, jobs, 1000):
            await queue.add_bulk([(Noop(n=i), None) for i in range(start, min(jobs, start + 1000))])
    handlers = [Handler(queue=q, fn=noop, data_model=Noop) for q in queues]
    cpu_before, started = cpu_s(pids), time.perf_counter()
    await run_burst_worker(url, handlers, prefix=prefix, max_jobs=100, cluster=cluster)
    took, cpu = time.perf_counter() - started, cpu_s(pids) - cpu_before
    total = jobs * len(queues)
    for name in queues:
        counts = await Queue(client, name, prefix=prefix).counts()  # type: ignore[arg-type]
        # Retention keeps the newest completed jobs only: drained means nothing left to run.
        left = counts[JobState.WAITING] + counts[JobState.DELAYED] + counts[JobState.ACTIVE]
        assert left == 0, counts
        assert counts[JobState.FAILED] == 0, counts
    return total / took, cpu * 1e6 / total


async def main(quick: bool) -> None:
    jobs, rounds = (500, 2) if quick else (2000, 3)
    workdir = Path(tempfile.mkdtemp(prefix="fsbench-cluster-"))
    local = LocalCluster(workdir)
    single, clustered = Runs(), Runs()
    try:
        local.start()
        with dedicated_redis("system") as server:
            plain = Redis.from_url(server.url)
            spread = cluster_client(local.url)
            await spread.initialize()
            queues = spread_queues(spread, "bc")
            version = server.version()
            for r in range(rounds):
                for name, client, url, is_cluster, pids, runs in (
                    ("single", plain, server.url, False, [server.proc.pid], single),
                    ("cluster", spread, local.url, True, [p.pid for p in local.procs], clustered),
                ):
                    rate, us = await drain(client, url, is_cluster, queues, jobs, pids)
                    runs.rates.append(rate)
                    runs.redis_us.append(us)
                    logger.info(
                        "round {} {}: {:.0f} jobs/s, {:.0f} µs Redis CPU/job", r, name, rate, us
                    )
            await plain.aclose()
            await spread.aclose()
    finally:
        local.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    s_rate, c_rate = statistics.median(single.rates), statistics.median(clustered.rates)
    s_us, c_us = statistics.median(single.redis_us), statistics.median(clustered.redis_us)
    total = jobs * len(queues)
    lines = [
        BEGIN,
        "### Redis Cluster against one Redis (bench/cluster.py)",
        "",
        f"{len(queues)} queues ({QUEUES_PER_MASTER} per master on the cluster), {jobs:,} jobs each "
        f"({total:,} a drain), drained by one in-process burst worker of 100 slots with a no-op "
        f"handler; {rounds} rounds, single and cluster interleaved, medians. Redis CPU: the "
        "server processes' CPU over the drain (all three masters' for the cluster).",
        "",
        "| system | jobs/s per round | jobs/s (median) | Redis CPU µs/job (median) | vs single Redis |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| single Redis | {', '.join(f'{r:,.0f}' for r in single.rates)} | {s_rate:,.0f} | "
        f"{s_us:.0f} | 1.00x |",
        f"| Redis Cluster, 3 masters | {', '.join(f'{r:,.0f}' for r in clustered.rates)} | "
        f"{c_rate:,.0f} | {c_us:.0f} | {c_rate / s_rate:.2f}x |",
        "",
        "Read the ratio with the machine in mind: 2 CPUs shared by the worker, every Redis "
        "process and other work. The cluster path costs more calls (one script call per queue "
        "where one Redis serves all queues in one; Redis CPU per job above), while its three "
        "masters may use both cores where one Redis uses one. Neither is a forecast for "
        "production, where a cluster's gain is about N times one primary's rate, spread over "
        "queues, with a core per primary: docs/operations/redis-topologies.md gives the "
        "figures on paper.",
        "",
        f"- CPU: {machine.cpu_model()}",
        f"- Load average (1/5/15 min): {machine.load_average()}",
        f"- Redis {version} (single and cluster nodes alike)",
        f"- Job layer as of {machine.job_layer_revision(REPO)}",
        f"- Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        END,
    ]
    write_section(HERE / "RESULTS.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer jobs and rounds")
    logger.remove()
    logger.add(sys.stderr, level="INFO", filter=lambda r: r["name"] == "__main__")
    asyncio.run(main(parser.parse_args().quick))
