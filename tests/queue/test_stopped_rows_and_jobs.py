"""The row or job a call stops at (claim.lua, finish.lua): what it wrote stands, and it is never
run again nor left to stop every later call. The failures: a sorted set held as a string, a job
record whose counter Redis refuses, a malformed row."""

import pytest
from forgestack_queue.claims import Claimer
from forgestack_queue.limits import OwnerLimits, QueueLimits
from forgestack_queue.options import JobOptions
from forgestack_queue.owners import full_id
from forgestack_queue.producer import Queue
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tests.queue.probe import PROBE, ProbeData
from tests.queue.stopped import OTHER, completed_row, finish_args


async def _lapse_and_claim_again(redis: Redis, queue: Queue, queue_prefix: str) -> list[str]:
    """Lets every lease of the queue lapse, then claims as another worker: the ids it starts."""
    for member in await redis.zrange(queue.keys.active, 0, -1):
        await redis.zadd(queue.keys.active, {member: 0}, xx=True)
    again = Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w2", lease_ms=60_000)
    claimed, _, _ = await again.claim(5)
    return [j.id for j in claimed]


async def test_a_completed_job_whose_owner_index_refuses_the_move_is_not_run_again(
    redis: Redis, queue_prefix: str
) -> None:
    """The row's own step fails after its outcome is written (state completed, token gone, event
    sent): its owner's completed index is held as a string. The job leaves the active set and
    is in the completed one, so a lapsed lease never runs it a second time."""
    owned = Queue(redis, PROBE, prefix=queue_prefix, owner="b")
    job_id = full_id("b", (await owned.add(ProbeData(tag="b"), JobOptions(attempts=3))).id)
    claimer = Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000)
    jobs, _, _ = await claimer.claim(1)
    assert [j.id for j in jobs] == [job_id]
    await redis.set(owned.keys.owner_set("b", JobState.COMPLETED), "not a sorted set")
    with pytest.raises(ResponseError):
        await scripts_for(redis).finish(args=finish_args(owned, [completed_row(jobs[0])]))
    assert await redis.hget(owned.keys.job(job_id), "state") == b"completed"
    await redis.delete(owned.keys.owner_set("b", JobState.COMPLETED))
    rerun = await _lapse_and_claim_again(redis, owned, queue_prefix)
    assert rerun == [], "completed, then started again: " + repr(
        await redis.hget(owned.keys.job(job_id), "hist")
    )


async def test_a_completed_row_stopped_at_its_retention_rule_is_not_run_again(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    """A row whose keep age is null stops the call at its trim rule, after the job was recorded
    completed: the job is not left in the active set to run again once its lease lapses."""
    await queue.add(ProbeData(tag="x"), JobOptions(attempts=3))
    claimer = Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000)
    jobs, _, _ = await claimer.claim(1)
    row = completed_row(jobs[0], keep_age=None)
    row[6] = 5  # a keep count, so the row reaches its trim rule
    with pytest.raises(ResponseError):
        await scripts_for(redis).finish(args=finish_args(queue, [row]))
    assert await redis.hget(queue.keys.job(jobs[0].id), "state") == b"completed"
    assert await _lapse_and_claim_again(redis, queue, queue_prefix) == []


async def test_one_job_whose_start_redis_refuses_does_not_stop_every_later_claim(
    redis: Redis, queue_prefix: str
) -> None:
    """A waiting job whose attempts counter is not an integer makes Redis refuse its start. The
    claim that stops at it fails it, with the error as its reason: put back first in line, it
    would stop every later claim of the worker's queues (one call group on a single Redis)."""
    queue = Queue(redis, PROBE, prefix=queue_prefix)
    other = Queue(redis, OTHER, prefix=queue_prefix)
    bad = (await queue.add(ProbeData(tag="bad"))).id
    await redis.hset(queue.keys.job(bad), "attempts_started", "not a number")
    good = (await other.add(ProbeData(tag="good"))).id
    claimer = Claimer(
        scripts_for(redis), queue_prefix, [PROBE, OTHER], worker_id="w", lease_ms=60_000
    )
    started: list[str] = []
    errors = 0
    for _ in range(4):
        try:
            jobs, _, _ = await claimer.claim(2)
        except ResponseError:
            errors += 1
            continue
        started += [j.id for j in jobs]
    assert errors <= 1, f"{errors} of 4 claims stopped on the one job"
    assert good in started
    # The job it stopped at is failed with the reason, visibly, not lost nor put back in line.
    record = await redis.hgetall(queue.keys.job(bad))
    assert record[b"state"] == b"failed"
    assert record[b"failed_reason"].startswith(b"not started: its claim stopped at it")
    assert await redis.zscore(queue.keys.failed, bad) is not None
    assert await redis.zscore(queue.keys.wait, bad) is None
    job = await queue.get_job(bad)
    assert job is not None and job.state == "failed"


async def test_a_job_parked_as_its_claim_stops_is_not_also_failed(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    """owner_may_start parks the job (back in the wait set at its parked score) before it lists
    the owner in the queue's parked set; that set held as a string stops the call there. The
    job is waiting, parked: failing it as 'not started' too leaves it in the wait and the failed
    set at once, in state failed, and a later claim starts the failed job."""
    owned = Queue(redis, PROBE, prefix=queue_prefix, owner="org-a")
    added = await owned.add_bulk([(ProbeData(tag=f"a{i}"), None) for i in range(2)])
    first, second = (full_id("org-a", r.id) for r in added)
    capped = {PROBE: QueueLimits(per_owner=OwnerLimits(concurrency=1))}
    claimer = Claimer(
        scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000, limits=capped
    )
    await redis.set(f"{queue.keys.base}parked", "not a sorted set")
    with pytest.raises(ResponseError):
        await claimer.claim(2)
    assert await redis.zscore(queue.keys.active, first) is not None
    in_wait = await redis.zscore(queue.keys.wait, second) is not None
    in_failed = await redis.zscore(queue.keys.failed, second) is not None
    state = await redis.hget(queue.keys.job(second), "state")
    assert not (in_wait and in_failed), f"in wait and failed at once, state {state!r}"
    assert in_wait == (state == b"waiting"), f"in wait: {in_wait}, state {state!r}"


async def test_a_gone_job_the_claim_stops_at_is_not_written_back_as_failed(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    """A popped job whose record is gone only leaves its owner index; that index held as a
    string stops the call there. The job was found gone: failing it writes a record (state,
    reason, history) for a job that no longer exists and lists it in the failed set."""
    owned = Queue(redis, PROBE, prefix=queue_prefix, owner="org-a")
    job_id = full_id("org-a", (await owned.add(ProbeData(tag="gone"))).id)
    await redis.delete(queue.keys.job(job_id))
    await redis.set(queue.keys.owner_set("org-a", JobState.WAITING), "not a sorted set")
    claimer = Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000)
    with pytest.raises(ResponseError):
        await claimer.claim(1)
    assert await redis.hgetall(queue.keys.job(job_id)) == {}
    assert await redis.zscore(queue.keys.failed, job_id) is None
