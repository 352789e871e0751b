"""A job removed as it completes leaves its result only in its `completed` event, for waiters: up
to a size (EVENTS_RESULT_MAX_BYTES), past which the event carries the size alone and a waiter is
told the result was too large to keep, never handed None as if the handler had returned it."""

import asyncio
from typing import Any

import pytest
from arq.connections import RedisSettings
from arq.worker import func
from forgestack_queue.arq_pool import create_pool
from forgestack_queue.errors import ResultTooLargeError
from forgestack_queue.events import EVENT_RESULT_MAX_BYTES
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.testing import make_worker, run_burst_worker, running
from redis.asyncio import Redis

from tests.queue.probe import Probe, ProbeData

BIG_TAG = "x" * EVENT_RESULT_MAX_BYTES
"""The probe returns its tag: a result just over the default cap."""


async def _completed_event(queue: Queue, job_id: str) -> dict[str, str]:
    for _, fields in await queue.redis.xrange(queue.keys.events):
        row = {k.decode(): v.decode() for k, v in fields.items()}
        if row["j"] == job_id and row["e"] == "completed":
            return row
    raise AssertionError(f"no completed event for {job_id}")


async def _wait_while_it_runs(
    queue: Queue, probe: Probe, redis_url: str, prefix: str, job_id: str, **worker: Any
) -> Any:
    waiter = asyncio.create_task(queue.wait(job_id, 10))
    await asyncio.sleep(0.05)
    await run_burst_worker(redis_url, [probe.handler()], prefix=prefix, **worker)
    async with asyncio.timeout(5):
        return await waiter


async def test_a_removed_jobs_result_over_the_cap_is_not_copied_into_its_event(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag=BIG_TAG), JobOptions(remove_on_complete=True))
    with pytest.raises(ResultTooLargeError) as too_large:
        await _wait_while_it_runs(queue, probe, redis_url, queue_prefix, added.id)
    assert "too large" in str(too_large.value) and "removed on completion" in str(too_large.value)
    event = await _completed_event(queue, added.id)
    assert "v" not in event
    size = int(event["vx"])
    assert size == too_large.value.size > EVENT_RESULT_MAX_BYTES
    assert await queue.get_job(added.id) is None


async def test_a_result_under_the_cap_still_travels_and_a_kept_one_is_read_whole(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    small = await queue.add(ProbeData(tag="t"), JobOptions(remove_on_complete=True))
    assert await _wait_while_it_runs(queue, probe, redis_url, queue_prefix, small.id) == {
        "tag": "t",
        "attempt": 1,
    }
    assert (await _completed_event(queue, small.id))["v"]
    kept = await queue.add(ProbeData(tag=BIG_TAG))
    result = await _wait_while_it_runs(queue, probe, redis_url, queue_prefix, kept.id)
    assert result == {"tag": BIG_TAG, "attempt": 1}
    assert set(await _completed_event(queue, kept.id)) == {"e", "j", "a"}


async def test_the_cap_is_the_workers_setting(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="t"), JobOptions(remove_on_complete=True))
    with pytest.raises(ResultTooLargeError):
        await _wait_while_it_runs(
            queue, probe, redis_url, queue_prefix, added.id, events_result_max_bytes=10
        )


async def echo(ctx: dict[str, Any], text: str) -> str:
    return text


async def test_arq_job_result_says_the_result_was_too_large(
    redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    pool = await create_pool(RedisSettings.from_dsn(redis_url), queue_prefix=queue_prefix)
    worker = make_worker(
        redis_url,
        [],
        prefix=queue_prefix,
        burst=False,
        functions=[func(echo, name="echo", max_tries=1, keep_result=0)],
    )
    try:
        job = await pool.enqueue_job("echo", "y" * (EVENT_RESULT_MAX_BYTES + 1))
        assert job is not None
        waiter = asyncio.create_task(job.result(timeout=10))
        await asyncio.sleep(0.05)
        async with running(worker):
            with pytest.raises(ResultTooLargeError):
                await waiter
    finally:
        await pool.aclose()
