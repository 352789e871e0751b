"""finish.lua over a batch of outcomes: the claim that finish and fetch next runs after it sees
the slots the batch freed, and a batch stopped half-way by a bad row keeps what it recorded."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from forgestack_queue.claims import Claimer
from forgestack_queue.events import EVENT_RESULT_MAX_BYTES
from forgestack_queue.history import decode_history
from forgestack_queue.keys import queue_key_prefix
from forgestack_queue.limits import QueueLimits
from forgestack_queue.owners import full_id
from forgestack_queue.producer import Queue
from forgestack_queue.runner import ClaimedJob
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tests.queue.probe import PROBE, ProbeData


def _finish_args(queue: Queue, jobs: list[ClaimedJob], keep: int) -> list[object]:
    rows = [[j.queue, j.id, j.token, "completed", "null", "", keep, -1, 0, 0] for j in jobs]
    return [
        queue.keys.job_prefix,
        queue_key_prefix(queue.prefix),
        json.dumps(rows),
        EVENT_RESULT_MAX_BYTES,
    ]


async def test_a_capped_queue_hands_the_slots_a_finish_frees_to_the_claim_in_that_call(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    ids = [(await queue.add(ProbeData(tag=str(n)))).id for n in range(4)]
    limits = {PROBE: QueueLimits(concurrency=2)}
    claimer = Claimer(
        scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000, limits=limits
    )
    first, _, _ = await claimer.claim(4)
    assert [j.id for j in first] == ids[:2]
    kept, fetched = await claimer.finish_and_claim(_finish_args(queue, first, -1), 2)
    assert kept == [1, 1]
    assert [j.id for j in fetched] == ids[2:]
    assert sorted(await redis.zrange(queue.keys.active, 0, -1)) == sorted(
        i.encode() for i in ids[2:]
    )


async def _finish_stopped_at_the_last_row(
    redis: Redis, queue: Queue, queue_prefix: str, count: int
) -> list[ClaimedJob]:
    """Claims `count` jobs and finishes them in one call whose last row stops it (a retry row
    without its delay); returns the jobs, once the call has failed."""
    for n in range(count):
        await queue.add(ProbeData(tag=str(n)))
    claimer = Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000)
    jobs, _, _ = await claimer.claim(count)
    args = _finish_args(queue, jobs, -1)
    rows = json.loads(str(args[2]))
    rows[-1] = rows[-1][:8]
    rows[-1][3] = "retry"
    args[2] = json.dumps(rows)
    with pytest.raises(ResponseError):
        await scripts_for(redis).finish(args=args)
    return jobs


async def test_a_finish_stopped_half_way_leaves_the_jobs_it_recorded_finished(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    jobs = await _finish_stopped_at_the_last_row(redis, queue, queue_prefix, 2)
    done = jobs[0].id
    assert await redis.hget(queue.keys.job(done), "state") == b"completed"
    assert await redis.zscore(queue.keys.completed, done) is not None
    assert await redis.zscore(queue.keys.active, done) is None


async def test_a_finish_stopped_half_way_has_moved_the_sets_of_the_rows_before_it(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    """finish.lua moves a batch's jobs between sets in one call per set after its rows: a row
    that stops the call must still leave every row before it out of the active set and in its
    finished set, as it was before the moves were gathered."""
    jobs = await _finish_stopped_at_the_last_row(redis, queue, queue_prefix, 3)
    for job in jobs[:2]:
        assert await redis.zscore(queue.keys.active, job.id) is None
        assert await redis.zscore(queue.keys.completed, job.id) is not None


async def test_a_claim_stopped_half_way_leaves_the_jobs_it_started_in_the_active_set(
    redis: Redis, queue_prefix: str
) -> None:
    """claim.lua adds a queue's started jobs to its active set in one call after its pops. When
    the call stops part-way (here: an owner index Redis holds as a string refuses the move),
    every job it had started must be in the active set, where a lapsed lease finds it; a started
    job missing from it would never run again nor be recovered."""
    first = Queue(redis, PROBE, prefix=queue_prefix, owner="org-a")
    second = Queue(redis, PROBE, prefix=queue_prefix, owner="org-b")
    a = full_id("org-a", (await first.add(ProbeData(tag="a"))).id)
    b = full_id("org-b", (await second.add(ProbeData(tag="b"))).id)
    await redis.set(second.keys.owner_set("org-b", JobState.ACTIVE), "not a sorted set")
    claimer = Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000)
    with pytest.raises(ResponseError):
        await claimer.claim(2)
    for started in (a, b):
        assert await redis.hget(first.keys.job(started), "state") == b"active"
        assert await redis.zscore(first.keys.active, started) is not None


@pytest.mark.parametrize("outcome", ["retry", "release", "limited"])
async def test_a_buffered_job_cancelled_as_it_ends_keeps_the_start_it_ran_at(
    redis: Redis, queue: Queue, queue_prefix: str, outcome: str
) -> None:
    """A job that waited in the prefetch buffer started when it ran (the row's held ms move the
    claim's start entry). Ending cancelled (the operator's cancel flag turns any outcome but
    completed and failed into a cancel) must keep that moved start, as the other outcomes do."""
    await queue.add(ProbeData(tag="held"))
    claimer = Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000)
    (job,), _, _ = await claimer.claim(1)
    key = queue.keys.job(job.id)
    claimed_at = int((await redis.hget(key, "hist")).decode().split(":")[1])
    await redis.hset(key, "cancel", "1")
    args = _finish_args(queue, [job], -1)
    rows = json.loads(str(args[2]))
    rows[0][3], rows[0][8], rows[0][9] = outcome, 1, 700  # held 700 ms in the buffer
    args[2] = json.dumps(rows)
    assert await scripts_for(redis).finish(args=args) == [1]
    assert await redis.hget(key, "failed_reason") == b"cancelled"
    start, end = (await redis.hget(key, "hist")).decode().split("|")
    assert start == f"s1:{claimed_at + 700}"
    assert end.startswith("f1:") and end.endswith(":cancelled")
    record = await queue.get_job(job.id)
    assert record is not None and record.corrupt is None


@pytest.mark.parametrize("attempt", [1, 2])
async def test_a_moved_start_leaves_a_history_every_reader_can_read(
    redis: Redis, queue: Queue, queue_prefix: str, attempt: int
) -> None:
    """The move rewrites the start entry in place: a first attempt's start is the history's
    first entry, and the rewritten history must not open with a separator (which readers take
    for an unreadable entry and flag the record)."""
    await queue.add(ProbeData(tag="held"))
    claimer = Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000)
    for n in range(1, attempt + 1):
        (job,), _, _ = await claimer.claim(1)
        args = _finish_args(queue, [job], -1)
        rows = json.loads(str(args[2]))
        rows[0][3], rows[0][8], rows[0][9] = (
            ("completed", -1, 250) if n == attempt else ("retry", 0, 0)
        )
        args[2] = json.dumps(rows)
        assert await scripts_for(redis).finish(args=args) == [1]
    record = await queue.get_job(job.id)
    assert record is not None and record.corrupt is None
    assert not (await redis.hget(queue.keys.job(job.id), "hist")).startswith(b"|")
    starts = [e for e in record.history if e.event == "started"]
    assert len(starts) == attempt


def test_a_history_written_with_an_opening_separator_reads_as_sound() -> None:
    """Records a worker before this fix wrote (a moved first start behind a '|') stay readable:
    the empty entry holds nothing and is not taken for damage."""
    created = datetime(2026, 11, 30, tzinfo=UTC)
    entries, bad = decode_history("|s1:701|c1:900", created)
    assert not bad
    assert [(e.event, e.at - created) for e in entries[1:]] == [
        ("started", timedelta(milliseconds=701)),
        ("completed", timedelta(milliseconds=900)),
    ]
    assert decode_history("s1:1|x:oops", created)[1], "a real unreadable entry is still flagged"
