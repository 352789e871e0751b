"""The operations scripts (cancel, promote, priority, release, a remote rate limit) emit their
events and keep each job's history, through the same prelude as every other move; owner indexes
stay in step."""

import asyncio
from typing import Any

import pytest
from forgestack_queue.errors import JobFailedError, RateLimited
from forgestack_queue.job import Job
from forgestack_queue.options import Backoff, JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.runner import Handler
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, run_burst_worker, running
from redis.asyncio import Redis

from tests.queue.owner_index import assert_indexes_agree
from tests.queue.probe import PROBE, Probe, ProbeData


@pytest.fixture
def acme(redis: Redis, queue_prefix: str) -> Queue:
    return Queue(redis, PROBE, prefix=queue_prefix, owner="acme")


async def _events(queue: Queue, local_id: str) -> list[dict[str, str]]:
    full = f"{queue.owner}~{local_id}" if queue.owner else local_id
    entries = await queue.redis.xrange(queue.keys.events)
    rows = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]
    return [row for row in rows if row["j"] == full]


async def test_a_promoted_job_emits_waiting_and_keeps_it_in_its_history(
    acme: Queue, redis: Redis
) -> None:
    added = await acme.add(ProbeData(tag="later"), JobOptions(delay=3_600_000))
    await acme.promote(added.id)
    events = await _events(acme, added.id)
    assert [e["e"] for e in events] == ["added", "delayed", "waiting"]
    assert events[-1]["r"] == "promoted" and events[-1]["o"] == "acme"
    record = await acme.get_job(added.id)
    assert record is not None
    assert [h.event for h in record.history] == ["added", "delayed", "promoted"]
    await assert_indexes_agree(redis, acme.keys)


async def test_a_priority_change_moves_no_state_and_emits_nothing(acme: Queue) -> None:
    added = await acme.add(ProbeData(tag="p"), JobOptions(priority=5))
    await acme.set_priority(added.id, 1)
    assert [e["e"] for e in await _events(acme, added.id)] == ["added"]


async def test_cancelling_a_waiting_job_after_a_failed_attempt_emits_failed_cancelled(
    acme: Queue, probe: Probe, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    added = await acme.add(
        ProbeData(tag="c", mode="fail"),
        JobOptions(attempts=3, backoff=Backoff(type="fixed", delay=3_600_000)),
    )
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix, burst_horizon_ms=0)
    record = await acme.cancel(added.id)
    assert record.state is JobState.FAILED and record.failed_reason == "cancelled"
    # The first attempt's traceback is history, not the cancelled job's.
    assert record.stacktrace is None
    assert [(h.event, h.note) for h in record.history][-2:] == [
        ("delayed", "3600000"),
        ("failed", "cancelled"),
    ]
    last = (await _events(acme, added.id))[-1]
    assert (last["e"], last["r"], last["a"]) == ("failed", "cancelled", "1")
    await assert_indexes_agree(redis, acme.keys)


async def test_a_running_job_cancelled_ends_its_waiters_with_the_failure(
    acme: Queue, probe: Probe, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    added = await acme.add(ProbeData(tag="long", mode="sleep", seconds=30), JobOptions(attempts=3))
    waiter = asyncio.create_task(acme.wait(added.id, 20))
    worker = make_worker(redis_url, [probe.handler()], prefix=queue_prefix, burst=False)
    async with running(worker):
        async with asyncio.timeout(10):
            await probe.started.wait()
        await acme.cancel(added.id)
        with pytest.raises(JobFailedError) as failed:
            async with asyncio.timeout(10):
                await waiter
    assert failed.value.reason == "cancelled"
    events = [(e["e"], e.get("r")) for e in await _events(acme, added.id)]
    assert events == [("added", None), ("active", None), ("failed", "cancelled")]
    await assert_indexes_agree(redis, acme.keys)


async def test_a_job_cancelled_while_running_then_retried_runs_to_completion(
    acme: Queue, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    started = asyncio.Event()
    runs: list[int] = []

    async def long_then_quick(job: Job[ProbeData]) -> dict[str, Any]:
        runs.append(job.attempt)
        started.set()
        # The retried run outlasts a few lease renewals, each of which reports flagged jobs.
        await asyncio.sleep(30 if len(runs) == 1 else 1)
        return {"run": len(runs)}

    handler = Handler(queue=PROBE, fn=long_then_quick, data_model=ProbeData)
    # A lease short enough that a renewal (the cancel flag's backstop) falls inside the run.
    worker = make_worker(redis_url, [handler], prefix=queue_prefix, burst=False, lease_ms=600)
    added = await acme.add(ProbeData(tag="twice"))
    async with running(worker):
        async with asyncio.timeout(10):
            await started.wait()
        await acme.cancel(added.id)
        with pytest.raises(JobFailedError):
            await acme.wait(added.id, 10)
        await acme.retry(added.id)
        assert await acme.wait(added.id, 10) == {"run": 2}
    events = [e["e"] for e in await _events(acme, added.id)]
    assert events == ["added", "active", "failed", "retrying", "active", "completed"]
    await assert_indexes_agree(redis, acme.keys)


async def test_a_remote_rate_limit_and_a_shutdown_put_the_job_back_with_a_waiting_event(
    queue: Queue, redis_url: str, queue_prefix: str
) -> None:
    calls: list[int] = []

    async def limited_once(job: Job[ProbeData]) -> dict[str, Any]:
        calls.append(job.attempt)
        if len(calls) == 1:
            raise RateLimited(50)
        return {}

    handler = Handler(queue=PROBE, fn=limited_once, data_model=ProbeData)
    added = await queue.add(ProbeData(tag="r"))
    await run_burst_worker(redis_url, [handler], prefix=queue_prefix)
    events = [(e["e"], e.get("r")) for e in await _events(queue, added.id)]
    assert events == [
        ("added", None),
        ("active", None),
        ("waiting", "rate limited"),
        ("active", None),
        ("completed", None),
    ]
    record = await queue.get_job(added.id)
    assert record is not None
    assert [(h.event, h.note) for h in record.history][1:3] == [
        ("started", None),
        ("released", "rate limited"),
    ]

    slow = await queue.add(ProbeData(tag="s", mode="sleep", seconds=30))
    probe = Probe()
    worker = make_worker(
        redis_url, [probe.handler()], prefix=queue_prefix, burst=False, job_completion_wait=0
    )
    async with running(worker):
        async with asyncio.timeout(10):
            await probe.started.wait()
    events = [(e["e"], e.get("r")) for e in await _events(queue, slow.id)]
    assert events == [("added", None), ("active", None), ("waiting", "released")]
    record = await queue.get_job(slow.id)
    assert record is not None and record.state is JobState.WAITING
