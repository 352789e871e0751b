"""Retention and clean on large sets: the longest single script call (every client of Redis waits
that long), and the memory one job takes, ours and BullMQ's on the same Redis.
`uv run python bench/retention.py [--jobs N] [--memory-only]`.

Issue 14 asked that trims and cleans never stall Redis above ~10 ms whatever the set size; this
seeds N completed and N waiting jobs on a dedicated Redis and times each bounded call. It also
asked that a job take no more memory than BullMQ's: when node and npm are on PATH, bullmq (major
5) is installed into a temporary directory and bullmq_memory.mjs takes the same job through it."""

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from forgestack_queue.keys import job_key_prefix, queue_key_prefix
from forgestack_queue.options import retention_limits
from forgestack_queue.producer import Queue
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from forgestack_shared.catalog import CATALOG, QueueSpec
from fsbench.server import dedicated_redis
from redis.asyncio import Redis

PAYLOAD = {"text": "x" * 185}
"""About 200 bytes of JSON, the size issue 14 compared against BullMQ."""
BULLMQ = "bullmq@5"
BULLMQ_DRIVER = Path(__file__).resolve().parent / "bullmq_memory.mjs"


@dataclass(frozen=True)
class Footprint:
    """MEMORY USAGE (SAMPLES 0: every field counted) of one job's hash, and its fields."""

    who: str
    waiting: int
    completed: int
    waiting_fields: list[str]
    completed_fields: list[str]


async def _seed(queue: Queue, n: int) -> None:
    options = next(iter(CATALOG.values())).defaults
    for start in range(0, n, 2000):
        await queue.add_bulk([(PAYLOAD, options)] * min(2000, n - start))


async def _complete_all(redis: Redis, queue: Queue) -> None:
    """Moves every waiting job to completed as the finish script leaves it (state, history,
    result, attempt count)."""
    ids = await redis.zrange(queue.keys.wait, 0, -1)
    now = time.time() * 1000
    for start in range(0, len(ids), 5000):
        async with redis.pipeline(transaction=False) as pipe:
            for i, raw in enumerate(ids[start : start + 5000], start):
                key = queue.keys.job(raw.decode())
                pipe.hset(key, mapping={"state": "completed", "hist": "s1:1|c1:2",
                                        "result": '{"ok":true}', "attempts_started": 1})  # fmt: skip
                pipe.zadd(queue.keys.completed, {raw: now - 10_000 + i * 0.001})
            pipe.zrem(queue.keys.wait, *ids[start : start + 5000])
            await pipe.execute()


async def _script_times(redis: Redis) -> list[float]:
    """Milliseconds each script call held Redis since the last reset (SLOWLOG, threshold 0)."""
    entries = await redis.slowlog_get(1_000_000)
    await redis.slowlog_reset()
    return [e["duration"] / 1000 for e in entries if e["command"].startswith(b"EVALSHA")]


async def _report(redis: Redis, label: str) -> None:
    times = await _script_times(redis)
    print(
        f"{label}: {len(times)} script calls, Redis busy per call p50 "
        f"{statistics.median(times):.2f} ms, max {max(times):.2f} ms"
    )


async def _memory(redis: Redis, queue: Queue, spec: QueueSpec[Any, Any]) -> Footprint:
    """One job through the real scripts: added, claimed, completed as a worker records it."""
    options = spec.defaults
    local = (await queue.add(PAYLOAD, options)).id
    job_id = f"{queue.owner}~{local}" if queue.owner else local
    key, k, scripts = queue.keys.job(job_id), queue.keys, scripts_for(redis)
    waiting = await redis.memory_usage(key, samples=0)
    waiting_fields = sorted(f.decode() for f in await redis.hkeys(key))  # type: ignore[misc]
    reply = await scripts.claim(
        keys=list(k.claim_keys),
        args=[job_key_prefix(queue.prefix), 1, 30_000, "w", 0, queue.name],
    )
    token = reply[2][7].decode()
    count, age = retention_limits(options.remove_on_complete)
    row = [queue.name, job_id, token, "completed", '{"ok":true}', "", count, age, 0]
    await scripts.finish(args=[job_key_prefix(queue.prefix), queue_key_prefix(queue.prefix),
                               json.dumps([row])])  # fmt: skip
    completed = await redis.memory_usage(key, samples=0)
    completed_fields = sorted(f.decode() for f in await redis.hkeys(key))  # type: ignore[misc]
    who = f"ours, {spec.name.value}, " + (f"owned by {queue.owner}" if queue.owner else "unowned")
    return Footprint(who, waiting, completed, waiting_fields, completed_fields)


def _bullmq_memory(url: str) -> Footprint | None:
    """BullMQ's figures for the same job on the same Redis; None (said why) without node/npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        print("BullMQ: not measured (node and npm are needed on PATH); ours only")
        return None
    with tempfile.TemporaryDirectory(prefix="fsbench-bullmq-") as tmp:
        try:
            subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--silent", BULLMQ],
                cwd=tmp, check=True, capture_output=True, timeout=600,
            )  # fmt: skip
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            print(f"BullMQ: not measured ({BULLMQ} did not install: {exc}); ours only")
            return None
        shutil.copy(BULLMQ_DRIVER, tmp)
        run = subprocess.run(
            [node, BULLMQ_DRIVER.name, url],
            cwd=tmp, check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    found = json.loads(run.stdout.strip().splitlines()[-1])
    return Footprint(
        f"BullMQ {found['version']}",
        found["waiting"]["bytes"],
        found["completed"]["bytes"],
        sorted(found["waiting"]["fields"]),
        sorted(found["completed"]["fields"]),
    )


def _print_memory(ours: list[Footprint], bullmq: Footprint | None) -> None:
    """BullMQ's job has the options of the first catalog queue (3 attempts, exponential backoff
    from 1 s, both retention rules) in its own names; the other queues' options are longer
    (notification-email's jitter, webhook-delivery's six-step retry schedule)."""
    rows = ([bullmq] if bullmq else []) + ours
    width = max(len(f.who) for f in rows)
    print("memory per job (MEMORY USAGE of its hash, SAMPLES 0), 200 B payload, catalog options:")
    for f in rows:
        line = f"  {f.who:<{width}}  waiting {f.waiting:>5,} B  completed {f.completed:>5,} B"
        if bullmq and f is not bullmq:
            ratios = f"{f.waiting / bullmq.waiting:.2f}x, {f.completed / bullmq.completed:.2f}x"
            line += f"  ({ratios} BullMQ's)"
        print(line)
    for f in rows[:2]:
        print(f"  {f.who}: waiting {', '.join(f.waiting_fields)}")
        print(f"  {'':{len(f.who)}}  completed {', '.join(f.completed_fields)}")


async def _memory_report(redis: Redis, url: str) -> None:
    ours = []
    for spec in CATALOG.values():
        for owner in (None, "org-a"):
            queue = Queue(redis, spec.name.value, prefix="rb", owner=owner)
            ours.append(await _memory(redis, queue, spec))
    events = Queue(redis, next(iter(CATALOG)).value, prefix="rb").keys.events
    length, size = await redis.xlen(events), await redis.memory_usage(events, samples=0)
    await redis.flushall()
    _print_memory(ours, _bullmq_memory(url))
    print(f"  a queue's event stream after those two jobs: {length} events, {size:,} B in all")
    await redis.flushall()


async def _stream_memory(redis: Redis, queue: Queue, n: int) -> None:
    """The event stream's cost per event at its cap (it is bounded per queue, not per job)."""
    await queue.add_bulk([(PAYLOAD, None)] * n)
    stream = await redis.memory_usage(queue.keys.events, samples=0)
    if stream:
        print(f"event stream of {n:,} events: {stream:,} B, {stream / n:.0f} B per event")


async def main(jobs: int, memory_only: bool) -> None:
    with dedicated_redis() as server:
        redis = Redis.from_url(server.url)
        queue = Queue(redis, "bench", prefix="rb", owner="org-a")
        operator = Queue(redis, "bench", prefix="rb")
        await _memory_report(redis, server.url)
        await _stream_memory(redis, queue, 10_000)
        await redis.flushall()
        if memory_only:
            return

        await _seed(queue, jobs)
        await _complete_all(redis, queue)
        await redis.config_set("slowlog-log-slower-than", 0)
        await redis.config_set("slowlog-max-len", 1_000_000)
        await redis.slowlog_reset()
        while await operator.trim(JobState.COMPLETED, count=10, limit=1000):
            pass
        await _report(redis, f"trim {jobs:,} completed jobs to 10")
        await _seed(queue, jobs)
        await _complete_all(redis, queue)
        await redis.slowlog_reset()
        await operator.clean(JobState.COMPLETED, 0, limit=jobs)
        await _report(redis, f"clean {jobs:,} completed jobs")
        await _seed(queue, jobs)
        await redis.slowlog_reset()
        await operator.clean(JobState.WAITING, 3600, limit=jobs)
        await _report(redis, f"clean scan of {jobs:,} waiting jobs, none old enough")
        await queue.clean(JobState.WAITING, 0, limit=jobs)
        await _report(redis, f"clean {jobs:,} waiting jobs (owner view)")
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--memory-only", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.memory_only))
