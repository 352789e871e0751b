"""Calls stopped part-way (claim.lua, finish.lua, which gather their set moves): what they leave.

Every test here sets up a key Redis refuses (a sorted set held as a string), the failure the
change's own tests use, and checks that no job ends up outside every set, where neither a claim
nor a lapsed lease would ever find it again."""

import pytest
from forgestack_queue.claims import Claimer
from forgestack_queue.options import JobOptions
from forgestack_queue.owners import full_id
from forgestack_queue.producer import Queue
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tests.queue.probe import PROBE, ProbeData
from tests.queue.stopped import OTHER, completed_row, finish_args, in_some_set


async def test_a_set_move_that_fails_does_not_drop_the_moves_of_another_queues_rows(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    """One worker's finish call carries rows of every queue it serves, and the call makes its set
    moves after the rows. A move Redis refuses (another queue's active set held as a string)
    must not keep a healthy queue's recorded row out of its finished set: the completed job is
    listed by state and trimmed like any other."""
    other = Queue(redis, OTHER, prefix=queue_prefix)
    await queue.add(ProbeData(tag="healthy"))
    await other.add(ProbeData(tag="broken"))
    claimer = Claimer(
        scripts_for(redis), queue_prefix, [PROBE, OTHER], worker_id="w", lease_ms=60_000
    )
    jobs, _, _ = await claimer.claim(2)
    assert sorted(j.queue for j in jobs) == sorted([PROBE, OTHER])
    healthy = next(j for j in jobs if j.queue == PROBE)
    broken = next(j for j in jobs if j.queue == OTHER)
    await redis.delete(other.keys.active)
    await redis.set(other.keys.active, "not a sorted set")
    with pytest.raises(ResponseError):
        await scripts_for(redis).finish(
            args=finish_args(queue, [completed_row(j) for j in (healthy, broken)])
        )
    assert await redis.hget(queue.keys.job(healthy.id), "state") == b"completed"
    assert await in_some_set(redis, queue, healthy.id) == ["completed"]


async def test_a_set_move_that_fails_never_leaves_a_completed_job_to_run_again(
    redis: Redis, queue_prefix: str
) -> None:
    """The same refused move, over a dozen queue-name pairs (Lua's order over the gathered moves
    varies with the names): a completed job is never left in its active set without a token,
    where a lapsed lease would recover it and run it a second time."""
    reran = []
    for n in range(12):
        healthy_q = Queue(redis, f"rv-h{n}", prefix=queue_prefix)
        broken_q = Queue(redis, f"rv-b{n}", prefix=queue_prefix)
        await healthy_q.add(ProbeData(tag="h"), JobOptions(attempts=3))
        await broken_q.add(ProbeData(tag="b"))
        names = [healthy_q.name, broken_q.name]
        claimer = Claimer(scripts_for(redis), queue_prefix, names, worker_id="w", lease_ms=60_000)
        jobs, _, _ = await claimer.claim(2)
        healthy = next(j for j in jobs if j.queue == healthy_q.name)
        broken = next(j for j in jobs if j.queue == broken_q.name)
        await redis.delete(broken_q.keys.active)
        await redis.set(broken_q.keys.active, "not a sorted set")
        with pytest.raises(ResponseError):
            await scripts_for(redis).finish(
                args=finish_args(healthy_q, [completed_row(j) for j in (healthy, broken)])
            )
        await redis.zadd(healthy_q.keys.active, {healthy.id: 0}, xx=True)  # its lease lapses
        again = Claimer(
            scripts_for(redis), queue_prefix, [healthy_q.name], worker_id="w2", lease_ms=60_000
        )
        claimed, _, _ = await again.claim(1)
        if claimed:
            reran.append(await redis.hget(healthy_q.keys.job(healthy.id), "hist"))
    assert reran == [], "completed, then started again: " + repr(reran)


async def test_the_row_that_stops_a_finish_leaves_its_job_where_it_can_run_again(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    """The row that stops the call (after its token went, before it was requeued) makes no set
    move: its job stays in the active set, where a lapsed lease recovers it, instead of being
    in no set at all with its state still `active`."""
    for n in range(2):
        await queue.add(ProbeData(tag=str(n)))
    claimer = Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000)
    jobs, _, _ = await claimer.claim(2)
    rows = [completed_row(j) for j in jobs]
    rows[1] = rows[1][:8]  # a retry row without its delay: the script stops at it
    rows[1][3] = "retry"
    with pytest.raises(ResponseError):
        await scripts_for(redis).finish(args=finish_args(queue, rows))
    stopped = jobs[1].id
    assert await in_some_set(redis, queue, stopped), await redis.hgetall(queue.keys.job(stopped))


async def test_a_claim_stopped_part_way_loses_no_job_it_had_popped(
    redis: Redis, queue_prefix: str
) -> None:
    """A claim that stops part-way (one owner's index refuses the move) puts the jobs its pop
    took after the failing one back in the wait set: one organisation's broken index never
    loses another organisation's job. The jobs it started are in the active set."""
    queues = {o: Queue(redis, PROBE, prefix=queue_prefix, owner=o) for o in ("a", "b", "c")}
    ids = {o: full_id(o, (await q.add(ProbeData(tag=o))).id) for o, q in queues.items()}
    await redis.set(queues["b"].keys.owner_set("b", JobState.ACTIVE), "not a sorted set")
    claimer = Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000)
    with pytest.raises(ResponseError):
        await claimer.claim(3)
    keys = queues["a"].keys
    # Equal fair tags: ZPOPMIN takes a, b, c in member order; b's index refuses the move.
    assert await redis.zscore(keys.active, ids["a"]) is not None
    assert await redis.zscore(keys.active, ids["b"]) is not None
    plain = Queue(redis, PROBE, prefix=queue_prefix)
    assert await in_some_set(redis, plain, ids["c"]), await redis.hgetall(keys.job(ids["c"]))


async def test_the_jobs_a_stopped_claim_started_go_back_unspent_before_the_next_claim(
    redis: Redis, queue_prefix: str
) -> None:
    """A claim whose script stopped part-way has started jobs whose reply never came: the
    claimer undoes them by token before its next claim, so they run on their first attempt
    instead of waiting out the lease and losing an attempt (a job of one attempt would fail
    without having run)."""
    queues = {o: Queue(redis, PROBE, prefix=queue_prefix, owner=o) for o in ("a", "b", "c")}
    for o, q in queues.items():
        await q.add(ProbeData(tag=o), JobOptions(attempts=1))
    broken = queues["b"].keys.owner_set("b", JobState.ACTIVE)
    await redis.set(broken, "not a sorted set")
    claimer = Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000)
    with pytest.raises(ResponseError):
        await claimer.claim(3)
    await redis.delete(broken)
    jobs, _, _ = await claimer.claim(3)
    assert sorted(j.id.split("~")[0] for j in jobs) == ["a", "b", "c"]
    assert [j.attempt for j in jobs] == [1, 1, 1]
