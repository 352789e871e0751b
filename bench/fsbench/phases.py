"""The measured phases. Each starts from an empty Redis (FLUSHALL) with reset command stats."""

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from .group import WorkerGroup
from .machine import cpu_busy_s
from .server import RedisServer, command_stats, reset_stats, run_queue_wait_s, server_cpu_s
from .systems import System, fill, open_producer, pending_jobs
from .workerproc import WorkerSpec


@dataclass
class DrainResult:
    jobs: int
    procs: int
    wall_s: float
    rate: float
    cpu_per_job_us: float
    redis_cpu_per_job_us: float
    """redis-server CPU over the drain (its Lua scripts included), per job."""
    round_trips_per_job: float
    commands_sent_per_job: float
    stats_per_job: dict[str, float]
    per_proc_jobs: list[int] = field(default_factory=list)
    load_1min: float = 0.0
    """The machine's 1-minute load average as the drain began: other work skews the figures."""
    other_cores: float = 0.0
    """CPUs kept busy by processes other than the workers, Redis and the bench during the drain."""
    job_layer: str = ""
    """Where the workers imported forgestack_queue from (which tree's code they ran)."""
    redis_wait_s: float = 0.0
    """redis-server's time runnable but waiting for a CPU over the drain (run_queue_wait_s)."""


async def drain(
    server: RedisServer,
    system: System,
    jobs: int,
    procs: int,
    *,
    filler: Callable[[System, str, int], Awaitable[None]] = fill,
    max_jobs: int | None = None,
    sleep_ms: float = 0.0,
) -> DrainResult:
    """Queue `jobs` (with `filler`: by default unowned, one producer), then release `procs` burst
    workers at once; time until the last job ended. `max_jobs`: slots per process (None: the
    system's); `sleep_ms`: each job's await."""
    ctl = server.control()
    ctl.flushall()
    await filler(system, server.url, jobs)
    spec = WorkerSpec(system.key, server.url, burst=True, max_jobs=max_jobs, sleep_ms=sleep_ms)
    load = os.getloadavg()[0]
    with WorkerGroup(spec, procs) as group:
        reset_stats(ctl)
        redis_cpu0, busy0, own0 = server_cpu_s(ctl), cpu_busy_s(), time.process_time()
        wait0 = run_queue_wait_s(server.proc.pid)
        t0 = group.go()
        reports = group.results(timeout_s=60 + jobs / 20)
        busy = cpu_busy_s() - busy0
        own = time.process_time() - own0
    redis_cpu = server_cpu_s(ctl) - redis_cpu0
    redis_wait = run_queue_wait_s(server.proc.pid) - wait0
    stats = command_stats(ctl)
    done = sum(r["jobs_complete"] for r in reports)
    failed = sum(r["jobs_failed"] + r["jobs_retried"] for r in reports)
    left = pending_jobs(system, ctl)
    if done != jobs or failed or left:
        raise RuntimeError(
            f"{system.key} drain: {done} of {jobs} completed, {failed} failed/retried, {left} left"
        )
    wall = max(r["last_end"] for r in reports) - t0
    workers_cpu = sum(r["cpu_s"] for r in reports)
    return DrainResult(
        jobs=jobs,
        procs=procs,
        wall_s=wall,
        rate=jobs / wall,
        cpu_per_job_us=workers_cpu / jobs * 1e6,
        redis_cpu_per_job_us=redis_cpu / jobs * 1e6,
        round_trips_per_job=sum(r["round_trips"] for r in reports) / jobs,
        commands_sent_per_job=sum(r["commands"] for r in reports) / jobs,
        stats_per_job={k: v / jobs for k, v in sorted(stats.items())},
        per_proc_jobs=[r["jobs_complete"] for r in reports],
        load_1min=load,
        other_cores=max(0.0, busy - workers_cpu - redis_cpu - own) / wall,
        job_layer=str(reports[0].get("job_layer", "")),
        redis_wait_s=redis_wait,
    )


@dataclass
class ServeResult:
    idle_s: float
    idle_sent_per_s: float
    """Commands the idle worker sent per second (MONITOR lines from its connections)."""
    idle_run_per_s: float
    """Commands Redis ran per second for it (commandstats: Lua-internal ones included)."""
    idle_stats: dict[str, int]
    sent: int
    started: int
    worker_round_trips_per_job: float
    """Round trips the worker made per job while fed at `rate`: wake-up, claims, finish, re-block."""
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


async def serve(
    server: RedisServer, system: System, *, idle_s: float, latency_s: float, rate: float
) -> ServeResult:
    """One long-running worker: first left idle (what does it send?), then fed `rate` jobs/s."""
    ctl = server.control()
    ctl.flushall()
    producer = await open_producer(system, server.url)
    spec = WorkerSpec(system.key, server.url, burst=False)
    try:
        with WorkerGroup(spec, 1) as group:
            group.go()
            await asyncio.sleep(1.0)  # past startup: only the idle loop remains
            reset_stats(ctl)
            lines = await monitor(server, idle_s)
            idle_stats = command_stats(ctl)
            total = int(latency_s * rate)
            group.mark()
            t0 = time.perf_counter()
            for n in range(total):
                pause = t0 + n / rate - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
                await producer.add_one(n)
            await asyncio.sleep(1.0)  # arq's default polling needs up to 0.5 s to pick the last
            group.stop()
            (report,) = group.results(timeout_s=30)
    finally:
        await producer.close()
    latencies = sorted(x * 1000 for x in report["latencies"])
    if not latencies:
        raise RuntimeError(f"{system.key}: no job started during the latency phase")
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return ServeResult(
        idle_s=idle_s,
        idle_sent_per_s=sum(1 for line in lines if line["client_type"] != "lua") / idle_s,
        idle_run_per_s=sum(idle_stats.values()) / idle_s,
        idle_stats=idle_stats,
        sent=total,
        started=len(latencies),
        worker_round_trips_per_job=report["round_trips_since_mark"] / total,
        p50_ms=q[49],
        p95_ms=q[94],
        p99_ms=q[98],
        max_ms=latencies[-1],
    )


async def monitor(server: RedisServer, seconds: float) -> list[dict[str, Any]]:
    """Every command Redis runs for `seconds`, as MONITOR reports it (Lua-run ones marked)."""
    client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(server.url)
    lines: list[dict[str, Any]] = []
    try:
        async with client.monitor() as mon:
            deadline = time.monotonic() + seconds
            while (left := deadline - time.monotonic()) > 0:
                try:
                    lines.append(dict(await asyncio.wait_for(mon.next_command(), left)))
                except TimeoutError:
                    break
    finally:
        await client.aclose()
    return lines


async def trace_one_job(server: RedisServer, system: System) -> list[str]:
    """MONITOR of one job, enqueue to completion, with an idle worker already waiting."""
    ctl = server.control()
    ctl.flushall()
    producer = await open_producer(system, server.url)
    spec = WorkerSpec(system.key, server.url, burst=False)
    try:
        info = await producer.redis.client_info()
        producer_port = str(info["addr"]).rsplit(":", 1)[1]
        with WorkerGroup(spec, 1) as group:
            group.go()
            await producer.add_one(-1)  # warm-up job: scripts loaded, first-call costs paid
            await asyncio.sleep(1.0)
            watching = asyncio.ensure_future(monitor(server, 1.0))
            await asyncio.sleep(0.2)
            await producer.add_one(0)
            lines = await watching
            group.stop()
            group.results(timeout_s=30)
    finally:
        await producer.close()
    return render_trace(lines, producer_port)


MAX_TRACE_LINES = 60


def render_trace(lines: list[dict[str, Any]], producer_port: str) -> list[str]:
    """Times from the producer's first command; clients named by role, long arguments cut."""
    start = next((i for i, ln in enumerate(lines) if ln["client_port"] == producer_port), None)
    if start is None:
        return []
    lines = lines[start : start + MAX_TRACE_LINES]
    t0 = lines[0]["time"]
    names: dict[str, str] = {producer_port: "producer"}
    out = []
    for line in lines:
        if line["client_type"] == "lua":
            who = "  (lua)"
        else:
            port = line["client_port"]
            if port not in names:
                names[port] = f"worker#{len(names)}"
            who = names[port]
        words = [w if len(w) <= 40 else w[:37] + "..." for w in line["command"].split(" ")]
        out.append(f"{(line['time'] - t0) * 1000:8.3f} ms  {who:9} {' '.join(words)}")
    return out


async def ping_round_trip(server: RedisServer, count: int = 2000) -> tuple[float, float]:
    """(p50, p99) ms of sequential PINGs from redis-py's asyncio client: the floor every figure
    above stands on, and a gauge of how busy the machine was."""
    client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(server.url)
    try:
        await client.ping()
        samples = []
        for _ in range(count):
            t0 = time.perf_counter()
            await client.ping()
            samples.append((time.perf_counter() - t0) * 1000)
    finally:
        await client.aclose()
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49], q[98]
