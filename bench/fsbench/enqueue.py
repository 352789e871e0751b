"""Enqueue rates of two producers, measured in alternating blocks so that whatever else loads the
machine meanwhile weighs on both alike; commands are counted in a separate pass per producer."""

import time
from collections.abc import Sequence
from dataclasses import dataclass

from . import counters
from .server import RedisServer, command_stats, reset_stats
from .systems import BULK_BATCH, Producer, System, open_producer

BLOCK = 250
"""Sequential adds per block before the other producer takes its turn."""
COUNTED_JOBS = 500


@dataclass
class EnqueueResult:
    jobs: int
    rate_one: float
    rate_bulk: float
    round_trips_per_job: float
    commands_sent_per_job: float
    stats_per_job: dict[str, float]
    """Commands Redis ran per enqueue (commandstats, Lua-internal ones included), one by one."""


async def _count(server: RedisServer, producer: Producer) -> tuple[float, float, dict[str, float]]:
    """(round trips, commands sent, commands Redis ran by name) per one-by-one enqueue."""
    ctl = server.control()
    ctl.flushall()
    reset_stats(ctl)
    counters.COUNTS.reset()
    for n in range(COUNTED_JOBS):
        await producer.add_one(n)
    stats = command_stats(ctl)
    return (
        counters.COUNTS.round_trips / COUNTED_JOBS,
        counters.COUNTS.commands / COUNTED_JOBS,
        {k: v / COUNTED_JOBS for k, v in sorted(stats.items())},
    )


async def enqueue(
    server: RedisServer, systems: Sequence[System], jobs: int
) -> dict[str, EnqueueResult]:
    """`jobs` adds per producer one by one (awaited in turn), then `jobs` in bulk batches."""
    ctl = server.control()
    producers = [await open_producer(s, server.url) for s in systems]
    try:
        for producer in producers:
            await producer.add_one(-1)  # connection open, scripts cached, as in a running app
        counts = [await _count(server, p) for p in producers]
        one = [0.0] * len(producers)
        ctl.flushall()
        for i, start in enumerate(range(0, jobs, BLOCK)):
            ns = range(start, min(jobs, start + BLOCK))
            for k in _turns(len(producers), i):
                t0 = time.perf_counter()
                for n in ns:
                    await producers[k].add_one(n)
                one[k] += time.perf_counter() - t0
        bulk = [0.0] * len(producers)
        ctl.flushall()
        for i, start in enumerate(range(0, jobs, BULK_BATCH)):
            ns = range(start, min(jobs, start + BULK_BATCH))
            for k in _turns(len(producers), i):
                t0 = time.perf_counter()
                await producers[k].add_many(ns)
                bulk[k] += time.perf_counter() - t0
    finally:
        for producer in producers:
            await producer.close()
    return {
        s.kind: EnqueueResult(
            jobs=jobs,
            rate_one=jobs / one[k],
            rate_bulk=jobs / bulk[k],
            round_trips_per_job=counts[k][0],
            commands_sent_per_job=counts[k][1],
            stats_per_job=counts[k][2],
        )
        for k, s in enumerate(systems)
    }


def _turns(count: int, block: int) -> list[int]:
    """Who goes first alternates, so neither always follows the other's leftovers."""
    order = list(range(count))
    return order if block % 2 == 0 else order[::-1]
