"""Job metrics through Redis: workers add, the API renders.

Each worker process counts outcomes and histogram buckets in memory and flushes the increments
every `FLUSH_S` seconds (and when it stops) into one Redis hash per queue, HINCRBY in one
pipeline; the add script counts added jobs in the same hash. Redis rather than a port per worker:
the counts of every worker process add up in one place with no service discovery, a scrape is one
request to the API, and a worker that exits loses at most a few seconds of increments.
"""

import asyncio
import contextlib
import time
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import RedisError

from .keys import QueueKeys, is_cluster

if TYPE_CHECKING:
    from .runner import ClaimedJob

FLUSH_S = 5.0

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
"""Seconds; the same bounds for run time and wait time (a job may wait or run for minutes)."""

HISTOGRAMS = ("duration", "wait")
COUNTERS = ("added", "completed", "failed", "retried", "rate_limited")
_OUTCOME_FIELD = {
    "completed": "completed",
    "failed": "failed",
    "retry": "retried",
    "limited": "rate_limited",
}


def metrics_key(prefix: str, queue: str, *, tagged: bool = False) -> str:
    return QueueKeys(prefix, queue, tagged).metrics


_FIELDS = {
    h: (
        (*(f"{h}_le_{bound}" for bound in BUCKETS), f"{h}_le_inf"),
        f"{h}_count",
        f"{h}_sum",
    )
    for h in HISTOGRAMS
}
"""Field names built once: observing is on every attempt's path."""


def bucket_field(histogram: str, seconds: float) -> str:
    """The field of the first bucket the value fits (non-cumulative; the renderer sums)."""
    return _FIELDS[histogram][0][bisect_left(BUCKETS, seconds)]


def _no_buckets() -> list[int]:
    return [0] * (len(BUCKETS) + 1)


@dataclass
class _Pending:
    """One queue's increments since the last flush. Observing is on every attempt's path, so a
    histogram is a list of bucket counts and a sum; the hash's field names are built at flush."""

    counts: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    """The outcome counters."""
    duration: list[int] = field(default_factory=_no_buckets)
    duration_s: float = 0.0
    wait: list[int] = field(default_factory=_no_buckets)
    wait_s: float = 0.0

    def fields(self) -> tuple[dict[str, int], dict[str, float]]:
        """The increments by field (HINCRBY, HINCRBYFLOAT): only fields that changed."""
        counts = dict(self.counts)
        sums: dict[str, float] = {}
        for histogram, buckets, total in (
            ("duration", self.duration, self.duration_s),
            ("wait", self.wait, self.wait_s),
        ):
            observed = sum(buckets)
            if not observed:
                continue
            names, count, total_name = _FIELDS[histogram]
            counts.update((name, n) for name, n in zip(names, buckets, strict=True) if n)
            counts[count] = observed
            sums[total_name] = total
        return counts, sums

    def merge(self, other: "_Pending") -> None:
        for name, n in other.counts.items():
            self.counts[name] += n
        for i, n in enumerate(other.duration):
            self.duration[i] += n
        for i, n in enumerate(other.wait):
            self.wait[i] += n
        self.duration_s += other.duration_s
        self.wait_s += other.wait_s


class WorkerMetrics:
    """One per worker process; `outcome` is a few list and dict updates, so the attempt path stays
    cheap."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._pending: defaultdict[str, _Pending] = defaultdict(_Pending)

    def outcome(self, queue: str, kind: str, run_s: float, wait_s: float | None) -> None:
        """`wait_s`: from added (or due, when delayed) to the first attempt's start; None on
        retries, so each job's wait is counted once."""
        pending = self._pending[queue]
        pending.counts[_OUTCOME_FIELD[kind]] += 1
        run_s = max(run_s, 0.0)
        pending.duration[bisect_left(BUCKETS, run_s)] += 1
        pending.duration_s += run_s
        if wait_s is not None:
            wait_s = max(wait_s, 0.0)
            pending.wait[bisect_left(BUCKETS, wait_s)] += 1
            pending.wait_s += wait_s

    async def flush(self, redis: Redis) -> None:
        """One pipeline; on a Redis error the increments are kept for the next flush."""
        taken, self._pending = self._pending, defaultdict(_Pending)
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for queue, pending in taken.items():
                    key = metrics_key(self.prefix, queue, tagged=is_cluster(redis))
                    counts, sums = pending.fields()
                    for name, n in counts.items():
                        pipe.hincrby(key, name, n)
                    for name, s in sums.items():
                        pipe.hincrbyfloat(key, name, s)
                await pipe.execute()
        except (RedisError, OSError):
            for queue, pending in taken.items():
                self._pending[queue].merge(pending)
            raise

    async def run(self, redis: Redis) -> None:
        """The flush loop of a running worker; its errors are logged, never fatal."""
        while True:
            await asyncio.sleep(FLUSH_S)
            try:
                await self.flush(redis)
            except (RedisError, OSError) as exc:
                logger.warning("metrics flush failed ({}); kept for the next one", exc)

    async def stop(self, redis: Redis) -> None:
        """Last flush: a stopping worker's increments are not lost."""
        with contextlib.suppress(RedisError, OSError):
            await self.flush(redis)


async def read_queue_metrics(
    redis: Redis, prefix: str, queues: list[str]
) -> dict[str, dict[str, float]]:
    async with redis.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.hgetall(metrics_key(prefix, queue, tagged=is_cluster(redis)))
        rows = await pipe.execute()
    return {
        queue: {k.decode(): float(v) for k, v in row.items()}
        for queue, row in zip(queues, rows, strict=True)
    }


def first_wait_s(job: "ClaimedJob", run_ms: float) -> float | None:
    """Added (or due, when delayed) to the first attempt's start; None for retries and for jobs
    whose record lacks its creation time."""
    if job.attempt != 1 or not job.created_at_ms:
        return None
    started_ms = time.time() * 1000 - run_ms
    return (started_ms - job.created_at_ms - job.options.delay) / 1000
