"""What a worker's metrics write to a queue's hash: one field per changed counter and bucket,
the histograms' counts and sums; increments a failed flush took are written by the next one."""

import pytest
from forgestack_queue.metrics import WorkerMetrics, metrics_key
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import free_port


def _observe(metrics: WorkerMetrics) -> None:
    metrics.outcome("q", "completed", 0.003, 0.02)
    metrics.outcome("q", "failed", 0.5, None)
    metrics.outcome("q", "retry", -1.0, None)  # a clock step back counts as 0
    metrics.outcome("q", "limited", 1000.0, 0.0)  # past the last bound


EXPECTED = {
    "completed": 1.0,
    "failed": 1.0,
    "retried": 1.0,
    "rate_limited": 1.0,
    "duration_le_0.005": 2.0,
    "duration_le_0.5": 1.0,
    "duration_le_inf": 1.0,
    "duration_count": 4.0,
    "duration_sum": pytest.approx(1000.503),
    "wait_le_0.005": 1.0,
    "wait_le_0.025": 1.0,
    "wait_count": 2.0,
    "wait_sum": pytest.approx(0.02),
}


async def _read(redis: Redis, prefix: str) -> dict[str, float]:
    raw = await redis.hgetall(metrics_key(prefix, "q"))
    return {k.decode(): float(v) for k, v in raw.items()}


async def test_a_flush_writes_each_changed_field_once(redis: Redis, queue_prefix: str) -> None:
    metrics = WorkerMetrics(queue_prefix)
    _observe(metrics)
    await metrics.flush(redis)
    assert await _read(redis, queue_prefix) == EXPECTED
    await metrics.flush(redis)  # nothing new: nothing written
    assert await _read(redis, queue_prefix) == EXPECTED


async def test_a_failed_flush_keeps_its_increments_for_the_next(
    redis: Redis, queue_prefix: str
) -> None:
    metrics = WorkerMetrics(queue_prefix)
    _observe(metrics)
    unreachable = Redis(host="127.0.0.1", port=free_port())
    with pytest.raises(RedisConnectionError):
        await metrics.flush(unreachable)
    await unreachable.aclose()
    await metrics.flush(redis)
    assert await _read(redis, queue_prefix) == EXPECTED
