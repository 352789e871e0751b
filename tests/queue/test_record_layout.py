"""Issue 14 point 12: a job's hash holds only what readers cannot derive, since each field costs
~50 bytes of Redis memory once the payload makes the hash a hashtable (records.py lists the
fields of each state). A field that creeps back fails here; records written in the layouts
before this one still read as they did."""

import time
from datetime import datetime
from typing import Any

import pytest
from forgestack_queue.job import Job
from forgestack_queue.options import Backoff, JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.records import JobRecord
from forgestack_queue.runner import Handler
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker
from forgestack_shared.catalog import CATALOG
from redis.asyncio import Redis

from tests.queue.probe import ProbeData

BASE = {"queue", "state", "data", "opts", "created_at"}
"""Every job; name, priority and meta only when they differ from their defaults."""
RAN = BASE | {"attempts_started", "hist"}
LAYOUT = {
    JobState.WAITING: BASE,
    JobState.ACTIVE: RAN | {"token"},
    JobState.COMPLETED: RAN | {"result"},
    JobState.FAILED: RAN | {"failed_reason", "stacktrace"},
}
PAYLOAD = "x" * 185
"""About 200 bytes of JSON, as bench/retention.py measures."""


async def _fields(redis: Redis, key: str) -> set[str]:
    return {f.decode() for f in await redis.hkeys(key)}  # type: ignore[misc]


class _Recorder:
    """A handler that records its own job's fields while it runs (the active layout)."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.seen: list[set[str]] = []

    async def handle(self, job: Job[ProbeData]) -> dict[str, Any]:
        self.seen.append(await _fields(self.queue.redis, self.queue.keys.job(job.id)))
        if job.data.mode == "fail" or (job.data.mode == "fail-once" and job.attempt == 1):
            raise RuntimeError(f"attempt {job.attempt} failed")
        return {"ok": True}

    def handler(self) -> Handler[ProbeData, dict[str, Any]]:
        return Handler(queue=self.queue.name, fn=self.handle, data_model=ProbeData)


@pytest.mark.parametrize("owner", [None, "org-a"])
@pytest.mark.parametrize("spec", list(CATALOG.values()), ids=lambda spec: spec.name.value)
async def test_a_catalog_job_stores_only_the_documented_fields_in_each_state(
    redis: Redis, redis_url: str, queue_prefix: str, spec: Any, owner: str | None
) -> None:
    queue = Queue(redis, spec.name.value, prefix=queue_prefix, owner=owner)
    added = await queue.add(ProbeData(tag=PAYLOAD).model_dump(), spec.defaults)
    key = queue.keys.job(added.id if owner is None else f"{owner}~{added.id}")
    assert await _fields(redis, key) == LAYOUT[JobState.WAITING]
    recorder = _Recorder(queue)
    await run_burst_worker(redis_url, [recorder.handler()], prefix=queue_prefix)
    assert recorder.seen == [LAYOUT[JobState.ACTIVE]]
    assert await _fields(redis, key) == LAYOUT[JobState.COMPLETED]
    job = await queue.get_job(added.id)
    assert job is not None and job.corrupt is None
    assert (job.state, job.owner, job.attempts_made, job.result) == (
        JobState.COMPLETED,
        owner,
        1,
        {"ok": True},
    )
    assert job.options == spec.defaults
    assert job.created_at and job.processed_at and job.finished_at
    assert job.created_at <= job.processed_at <= job.finished_at
    assert [e.event for e in job.history] == ["added", "started", "completed"]


async def test_retries_delays_and_failures_leave_no_stale_fields(
    redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    spec = next(iter(CATALOG.values()))
    queue = Queue(redis, spec.name.value, prefix=queue_prefix)
    retried = JobOptions(backoff=Backoff(type="fixed", delay=50)).merged_over(spec.defaults)
    twice = await queue.add(ProbeData(tag=PAYLOAD, mode="fail-once").model_dump(), retried)
    failed = await queue.add(
        ProbeData(tag=PAYLOAD, mode="fail").model_dump(), retried.model_copy(update={"attempts": 1})
    )
    later = await queue.add(ProbeData(tag=PAYLOAD).model_dump(), JobOptions(delay=60_000))
    assert await _fields(redis, queue.keys.job(later.id)) == BASE | {"delay_until", "ord", "hist"}
    await queue.promote(later.id)
    assert await _fields(redis, queue.keys.job(later.id)) == BASE | {"hist"}

    recorder = _Recorder(queue)
    await run_burst_worker(redis_url, [recorder.handler()], prefix=queue_prefix)
    # The retry ran from delayed: its due time and add order went when it was promoted.
    assert LAYOUT[JobState.ACTIVE] | {"failed_reason", "stacktrace"} in recorder.seen
    assert all(not {"delay_until", "ord"} & seen for seen in recorder.seen)
    assert await _fields(redis, queue.keys.job(twice.id)) == LAYOUT[JobState.COMPLETED]
    assert await _fields(redis, queue.keys.job(failed.id)) == LAYOUT[JobState.FAILED]
    assert await _fields(redis, queue.keys.job(later.id)) == LAYOUT[JobState.COMPLETED]
    done = await queue.get_job(twice.id)
    assert done is not None and done.attempts_made == 2 and done.failed_reason is None
    starts = [e.at for e in done.history if e.event == "started"]
    assert done.processed_at == starts[-1] and done.finished_at == done.history[-1].at

    again = await queue.retry(failed.id)
    assert await _fields(redis, queue.keys.job(failed.id)) == BASE | {"hist"}
    assert (again.attempts_made, again.processed_at, again.finished_at) == (0, None, None)


async def test_fields_that_differ_from_the_defaults_are_stored_and_read_back(
    queue: Queue,
) -> None:
    added = await queue.add(ProbeData(tag="x"), JobOptions(priority=3, attempts=4), name="other")
    fields = set(await queue.redis.hkeys(queue.keys.job(added.id)))
    assert {b"name", b"priority"} <= fields and b"attempts" not in fields
    job = await queue.get_job(added.id)
    assert job is not None and (job.name, job.priority, job.state) == (
        "other",
        3,
        JobState.WAITING,
    )
    assert job.options.attempts == 4


def _old_layout(
    queue: Queue, state: JobState, attempts: int, now: int, **fields: Any
) -> dict[str, Any]:
    """A hash of org-a's, as the scripts wrote it before this layout: owner, token (emptied),
    attempts_made (= attempts_started), processed_at and finished_at fields, both retention
    rules in opts. `now`: the caller's clock reading (a second reading here could fall in the
    next millisecond, and the history's times count from created_at)."""
    base = {
        "queue": queue.name,
        "state": state.value,
        "data": '{"tag":"old"}',
        "opts": '{"attempts":3,"remove_on_complete":{"age":3600,"count":1000},'
        '"remove_on_fail":{"age":604800,"count":10000}}',
        "created_at": now - 10_000,
        "owner": "org-a",
        "token": "",
        "attempts_started": attempts,
        "attempts_made": attempts,
    }
    return base | fields


def _times_ms(job: JobRecord) -> tuple[int | None, int | None]:
    """processed_at and finished_at as epoch ms, as the old layout stored them."""
    return _ms(job.processed_at), _ms(job.finished_at)


def _ms(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp() * 1000)


async def test_records_in_the_layouts_before_this_one_read_as_they_did(
    queue: Queue, redis: Redis
) -> None:
    owned = Queue(redis, queue.name, prefix=queue.prefix, owner="org-a")
    now = int(time.time() * 1000)
    records = {
        # Before the history: times only in their fields.
        "org-a~plain": _old_layout(
            queue,
            JobState.COMPLETED,
            1,
            now,
            processed_at=now - 9_000,
            finished_at=now - 8_000,
            result='{"ok":true}',
        ),
        # With the history, fields and history agreeing.
        "org-a~hist": _old_layout(
            queue,
            JobState.FAILED,
            2,
            now,
            processed_at=now - 7_000,
            finished_at=now - 6_000,
            hist="s1:1000|r1:2000:boom|s2:3000|f2:4000:boom",
            failed_reason="boom",
            stacktrace="Traceback",
        ),
    }
    for job_id, mapping in records.items():
        await redis.hset(queue.keys.job(job_id), mapping=mapping)
    plain = await owned.get_job("plain")
    assert plain is not None and plain.corrupt is None
    assert (plain.owner, plain.attempts_made, plain.result) == ("org-a", 1, {"ok": True})
    assert _times_ms(plain) == (now - 9_000, now - 8_000)
    assert plain.options.remove_on_fail == JobOptions().remove_on_fail
    hist = await owned.get_job("hist")
    assert hist is not None and hist.corrupt is None
    assert (hist.owner, hist.attempts_made, hist.failed_reason) == ("org-a", 2, "boom")
    assert _times_ms(hist) == (now - 7_000, now - 6_000)


async def test_an_old_layout_job_runs_on_and_reads_its_new_attempt(
    queue: Queue, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    """A job waiting for its retry when the layer was upgraded: its old fields (a first attempt's
    processed_at and attempts_made, an empty token) must not win over what the new attempt
    writes."""
    now = int(time.time() * 1000)
    job_id = "org-a~upgraded"
    await redis.hset(
        queue.keys.job(job_id),
        mapping=_old_layout(
            queue,
            JobState.WAITING,
            1,
            now,
            processed_at=now - 9_000,
            hist="s1:1000|r1:2000:boom",
            failed_reason="boom",
            stacktrace="Traceback",
        ),
    )
    await redis.zadd(queue.keys.wait, {job_id: 1})
    await redis.zadd(queue.keys.owner_set("org-a", JobState.WAITING), {job_id: 1})
    recorder = _Recorder(queue)
    await run_burst_worker(redis_url, [recorder.handler()], prefix=queue_prefix)
    job = await Queue(redis, queue.name, prefix=queue_prefix, owner="org-a").get_job("upgraded")
    assert job is not None and job.corrupt is None and job.state is JobState.COMPLETED
    assert (job.owner, job.attempts_made, job.failed_reason) == ("org-a", 2, None)
    assert job.processed_at and int(job.processed_at.timestamp() * 1000) > now
    assert job.finished_at and job.finished_at >= job.processed_at
    assert "token" not in await _fields(redis, queue.keys.job(job_id))
