"""Retention and clean on large sets: the longest single script call (every client of Redis waits
that long), and the memory one job takes. `uv run python bench/retention.py [--jobs N]`.

Issue 14 asked that trims and cleans never stall Redis above ~10 ms whatever the set size; this
seeds N completed and N waiting jobs on a dedicated Redis and times each bounded call."""

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from forgestack_queue.keys import job_key_prefix, queue_key_prefix
from forgestack_queue.producer import Queue
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from forgestack_shared.catalog import CATALOG
from fsbench.server import dedicated_redis
from redis.asyncio import Redis

PAYLOAD = {"text": "x" * 185}
"""About 200 bytes of JSON, the size issue 14 compared against BullMQ."""


async def _seed(queue: Queue, n: int) -> None:
    options = next(iter(CATALOG.values())).defaults
    for start in range(0, n, 2000):
        await queue.add_bulk([(PAYLOAD, options)] * min(2000, n - start))


async def _complete_all(redis: Redis, queue: Queue) -> None:
    """Moves every waiting job to completed as the finish script leaves it (state, times, result)."""
    ids = await redis.zrange(queue.keys.wait, 0, -1)
    now = time.time() * 1000
    for start in range(0, len(ids), 5000):
        async with redis.pipeline(transaction=False) as pipe:
            for i, raw in enumerate(ids[start : start + 5000], start):
                key = queue.keys.job(raw.decode())
                pipe.hset(key, mapping={"state": "completed", "finished_at": int(now),
                                        "processed_at": int(now), "result": '{"ok":true}',
                                        "attempts_made": 1, "token": ""})  # fmt: skip
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


async def _memory(redis: Redis, queue: Queue) -> None:
    """One job through the real scripts: added, claimed, completed as a worker records it."""
    options = next(iter(CATALOG.values())).defaults
    local = (await queue.add(PAYLOAD, options)).id
    job_id = f"{queue.owner}~{local}" if queue.owner else local
    key, k, scripts = queue.keys.job(job_id), queue.keys, scripts_for(redis)
    waiting = await redis.memory_usage(key, samples=0)
    reply = await scripts.claim(
        keys=list(k.claim_keys),
        args=[job_key_prefix(queue.prefix), 1, 30_000, "w", 0, queue.name],
    )
    token = reply[2][7].decode()
    row = [queue.name, job_id, token, "completed", '{"ok":true}', "", 1000, 3600, 0]
    await scripts.finish(args=[job_key_prefix(queue.prefix), queue_key_prefix(queue.prefix),
                               json.dumps([row])])  # fmt: skip
    completed = await redis.memory_usage(key, samples=0)
    who = f"owned by {queue.owner}" if queue.owner else "unowned"
    print(f"one job ({who}, 200 B payload, catalog options): waiting {waiting} B, "
          f"completed {completed} B (MEMORY USAGE of its hash)")  # fmt: skip
    events = await redis.xlen(k.events)
    if events:
        stream = await redis.memory_usage(k.events, samples=0)
        print(f"  its queue's event stream: {events} events, {stream} B in all")


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
        await _memory(redis, operator)
        await _memory(redis, queue)
        await redis.flushall()
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
