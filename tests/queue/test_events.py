"""The event stream the scripts append to, progress and log lines, and each job's history,
through a real worker on real Redis."""

import asyncio

import pytest
from forgestack_queue.errors import JobFailedError, JobNotFoundError, WaitTimeoutError
from forgestack_queue.events import last_event_ids, read_queues
from forgestack_queue.keys import logs_key
from forgestack_queue.options import Backoff, JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker
from forgestack_queue.waiting import BLOCK_SLICE_MS, wait_for_job
from pydantic import BaseModel
from redis.asyncio import Redis

from tests.queue.probe import Probe, ProbeData


async def _events(queue: Queue, job_id: str) -> list[dict[str, str]]:
    entries = await queue.redis.xrange(queue.keys.events)
    rows = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]
    return [row for row in rows if row["j"] == job_id]


async def test_a_retried_then_completed_job_leaves_its_events_and_history(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(
        ProbeData(tag="t", mode="fail-until-2"),
        JobOptions(attempts=3, backoff=Backoff(type="fixed", delay=50)),
    )
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)

    events = await _events(queue, added.id)
    assert [e["e"] for e in events] == [
        "added",
        "active",
        "retrying",
        "delayed",
        "waiting",
        "active",
        "completed",
    ]
    assert [e.get("a") for e in events if e["e"] == "active"] == ["1", "2"]
    assert "transient failure on attempt 1" in events[2]["r"]
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.COMPLETED
    # The first attempt's failure is history, not the completed job's reason.
    assert job.failed_reason is None and job.stacktrace is None
    steps = [(h.event, h.attempt) for h in job.history]
    assert steps == [
        ("added", None),
        ("started", 1),
        ("retry", 1),
        ("delayed", None),
        ("started", 2),
        ("completed", 2),
    ]
    assert job.history[2].note == "RuntimeError: transient failure on attempt 1"
    assert job.history[3].note == "50"
    times = [h.at for h in job.history]
    assert times == sorted(times) and job.finished_at is not None
    assert abs((times[-1] - job.finished_at).total_seconds()) < 0.01


async def test_history_keeps_the_last_fifty_entries(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="t", mode="fail"), JobOptions(attempts=30))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.FAILED
    # 30 starts + 29 retries + 1 failure = 60 entries, of which the last 50, plus the add.
    assert len(job.history) == 51
    assert (job.history[-1].event, job.history[-1].attempt) == ("failed", 30)
    # Bounded whatever the job does: 50 entries of at most ~100 bytes (80 of them a reason).
    assert len(await queue.redis.hget(queue.keys.job(added.id), "hist")) <= 50 * 100


async def test_progress_and_logs_are_stored_and_emitted(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="t", mode="report"))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    job = await queue.get_job(added.id)
    assert job is not None
    assert job.progress == {"done": 2, "of": 2}
    assert job.logs == ["half way through t"]
    reported = [(e["e"], e.get("p") or e.get("l")) for e in await _events(queue, added.id)]
    assert ("progress", "50") in reported
    assert ("log", "half way through t") in reported
    assert ("progress", '{"done":2,"of":2}') in reported


@pytest.mark.parametrize("how", ["remove", "clean", "trim", "retention"])
async def test_every_delete_path_deletes_the_log_lines(
    how: str, queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    options = JobOptions(remove_on_complete=True) if how == "retention" else None
    added = await queue.add(ProbeData(tag="t", mode="report"), options)
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    if how != "retention":
        assert await queue.redis.exists(logs_key(queue_prefix, added.id)) == 1
    if how == "remove":
        await queue.remove(added.id)
    elif how == "clean":
        assert await queue.clean(JobState.COMPLETED, 0) == 1
    elif how == "trim":
        assert await queue.trim(JobState.COMPLETED, count=0) == 1
    assert await queue.redis.exists(logs_key(queue_prefix, added.id)) == 0
    assert (await _events(queue, added.id))[-1]["e"] == "removed"


async def test_a_lost_lease_deletes_the_log_lines_of_a_job_removed_on_failure(
    queue: Queue, probe: Probe, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="t"), JobOptions(remove_on_fail=True))
    await redis.rpush(logs_key(queue_prefix, added.id), "a line")
    # The attempt of a worker that died: active, its lease long past.
    await redis.zrem(queue.keys.wait, added.id)
    await redis.zadd(queue.keys.active, {added.id: 1})
    await redis.hset(queue.keys.job(added.id), mapping={"state": "active", "attempts_started": 1})
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert await redis.exists(queue.keys.job(added.id), logs_key(queue_prefix, added.id)) == 0
    assert [e["e"] for e in await _events(queue, added.id)][-2:] == ["failed", "removed"]


class Result(BaseModel):
    tag: str
    attempt: int


async def test_wait_returns_the_typed_result_once_the_job_completes(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="t", mode="sleep", seconds=0.3))
    waiter = asyncio.create_task(queue.wait(added.id, 10, result_model=Result))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    async with asyncio.timeout(5):
        assert await waiter == Result(tag="t", attempt=1)
    # A finished job answers at once, from its record.
    assert await queue.wait(added.id, 0) == {"tag": "t", "attempt": 1}


async def test_wait_gets_the_result_of_a_job_removed_as_it_completes(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="t"), JobOptions(remove_on_complete=True))
    waiter = asyncio.create_task(queue.wait(added.id, 10))
    await asyncio.sleep(0.05)
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    async with asyncio.timeout(5):
        assert await waiter == {"tag": "t", "attempt": 1}


async def test_wait_raises_the_failure_and_times_out_while_the_job_waits(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="t", mode="unrecoverable"))
    started = asyncio.get_running_loop().time()
    with pytest.raises(WaitTimeoutError) as timed_out:
        await queue.wait(added.id, 0.3)
    assert 0.25 < asyncio.get_running_loop().time() - started < 2
    assert timed_out.value.state == "waiting"
    waiter = asyncio.create_task(queue.wait(added.id, 10))
    await asyncio.sleep(0.05)
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    with pytest.raises(JobFailedError) as failed:
        async with asyncio.timeout(5):
            await waiter
    assert failed.value.reason == "UnrecoverableError: cannot ever succeed"
    with pytest.raises(JobNotFoundError):
        await queue.wait("no-such-job", 1)


async def test_no_events_are_recorded_when_the_cap_is_zero(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    await queue.redis.set(queue.keys.events_maxlen, 0)
    await queue.add(ProbeData(tag="t"))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert await queue.redis.exists(queue.keys.events) == 0


async def test_wait_still_ends_when_events_are_off(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    await queue.redis.set(queue.keys.events_maxlen, 0)
    added = await queue.add(ProbeData(tag="t", mode="sleep", seconds=0.2))
    waiter = asyncio.create_task(queue.wait(added.id, 10))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    async with asyncio.timeout(5):
        assert await waiter == {"tag": "t", "attempt": 1}
    assert await queue.redis.exists(queue.keys.events) == 0


async def test_the_stream_is_capped_near_its_setting(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix, events_max_len=100)
    await queue.add_bulk([(ProbeData(tag=str(i)), None) for i in range(600)])
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    # MAXLEN ~ trims whole radix-tree nodes (100 entries each by default).
    assert 100 <= await queue.redis.xlen(queue.keys.events) <= 300


async def test_a_wait_without_timeout_ends_when_the_final_event_never_comes(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    # The waiter starts while events are on; then the stream stops carrying the job's end (a
    # worker restarted with EVENTS_MAX_LEN=0 here; a stream trimmed past it under load does the
    # same). arq's `Job.result()` without a timeout must still see the job finish.
    added = await queue.add(ProbeData(tag="t"))
    waiter = asyncio.create_task(wait_for_job(queue.redis, queue.keys, added.id, None))
    await asyncio.sleep(0.2)
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix, events_max_len=0)
    async with asyncio.timeout(BLOCK_SLICE_MS / 1000 + 5):
        outcome = await waiter
    assert outcome is not None and outcome.finished and outcome.state == "completed"
    assert outcome.result == {"tag": "t", "attempt": 1}


async def test_one_read_follows_several_queues_as_one_owner_sees_them(
    redis: Redis, queue_prefix: str
) -> None:
    """The dashboard's read: one XREAD BLOCK over every queue, woken by whichever moves; another
    owner's events move the cursor on but are never handed over, under any id."""
    mine = [Queue(redis, name, prefix=queue_prefix, owner="org-a") for name in ("q1", "q2")]
    theirs = Queue(redis, "q2", prefix=queue_prefix, owner="org-b")
    keys = [q.keys for q in mine]
    start = await last_event_ids(redis, keys)
    assert start == {"q1": "0-0", "q2": "0-0"}

    reading = asyncio.create_task(read_queues(redis, keys, start, owner="org-a", block_ms=10_000))
    await asyncio.sleep(0.05)  # the read is blocked when the job arrives
    secret = await theirs.add({"n": 1}, JobOptions(job_id="b-secret"))
    cursors, seen = await asyncio.wait_for(reading, 10)
    assert seen == [] and cursors["q2"] != "0-0" and cursors["q1"] == "0-0"

    added = await mine[1].add({"n": 2}, JobOptions(job_id="a-own"))
    cursors, seen = await read_queues(redis, keys, cursors, owner="org-a", block_ms=1_000)
    assert [(e.queue, e.job_id, e.event) for e in seen] == [("q2", added.id, "added")]
    assert cursors == await last_event_ids(redis, keys)

    everything = await read_queues(redis, keys, start, owner=None, block_ms=1)
    assert {e.job_id for e in everything[1]} == {f"org-b~{secret.id}", f"org-a~{added.id}"}
