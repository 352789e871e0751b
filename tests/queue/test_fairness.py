"""Issue 15, target 2: within a queue, claims take turns across the owners of waiting jobs, so one
owner's burst delays another's job by at most one job per owner; priority is strict across the
queue and FIFO holds within an owner. Orders are read from claims, one job at a time."""

import asyncio
from collections import Counter

from forgestack_queue.claims import Claimer
from forgestack_queue.options import JobOptions
from forgestack_queue.owners import owner_of
from forgestack_queue.producer import Queue
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker
from redis.asyncio import Redis

from tests.queue.fair_order import assert_fair_order
from tests.queue.probe import PROBE, Probe, ProbeData

UNOWNED = "(unowned)"


def _owned(redis: Redis, prefix: str, *owners: str) -> list[Queue]:
    return [Queue(redis, PROBE, prefix=prefix, owner=o) for o in owners]


async def _claim_ids(redis: Redis, prefix: str, n: int) -> list[str]:
    """Full ids of the next `n` jobs, claimed one per call as a worker with one slot would."""
    claimer = Claimer(scripts_for(redis), prefix, [PROBE], worker_id="t", lease_ms=600_000)
    ids = []
    for _ in range(n):
        claimed, _, _ = await claimer.claim(1)
        if not claimed:
            break
        ids.append(claimed[0].id)
    return ids


def _who(job_id: str) -> str:
    return owner_of(job_id) or UNOWNED


def _assert_turns(order: list[str], totals: dict[str, int]) -> None:
    """Round robin: after every claim, no owner with jobs still waiting is more than one job
    behind any other owner."""
    served: Counter[str] = Counter()
    for i, job_id in enumerate(order):
        served[_who(job_id)] += 1
        top = max(served.values())
        for owner, total in totals.items():
            if served[owner] < total:
                assert served[owner] >= top - 1, f"{owner} fell behind at claim {i}: {served}"


async def test_a_burst_is_served_in_turns_with_every_other_owner(
    redis: Redis, queue_prefix: str, queue: Queue
) -> None:
    a, b, c = _owned(redis, queue_prefix, "org-a", "org-b", "org-c")
    burst = await a.add_bulk([(ProbeData(tag=f"a{i}"), None) for i in range(500)])
    small = await b.add_bulk([(ProbeData(tag=f"b{i}"), None) for i in range(5)])
    one = await c.add(ProbeData(tag="c0"))
    ops = await queue.add_bulk([(ProbeData(tag=f"op{i}"), None) for i in range(2)])
    await assert_fair_order(redis, queue.keys)

    order = await _claim_ids(redis, queue_prefix, 40)
    _assert_turns(order, {"org-a": 500, "org-b": 5, "org-c": 1, UNOWNED: 2})
    # Every job of the small owners ran within the first rounds, not after the burst.
    assert {f"org-b~{r.id}" for r in small} | {f"org-c~{one.id}"} | {r.id for r in ops} <= set(
        order[:20]
    )
    # FIFO within each owner.
    of_a = [i for i in order if _who(i) == "org-a"]
    assert of_a == [f"org-a~{r.id}" for r in burst[: len(of_a)]] and len(of_a) == 32
    assert [i for i in order if _who(i) == "org-b"] == [f"org-b~{r.id}" for r in small]
    assert [i for i in order if _who(i) == UNOWNED] == [r.id for r in ops]


async def test_a_newcomer_waits_one_turn_however_long_the_burst_has_run(
    redis: Redis, queue_prefix: str
) -> None:
    a, b = _owned(redis, queue_prefix, "org-a", "org-b")
    await a.add_bulk([(ProbeData(tag=f"a{i}"), None) for i in range(300)])
    assert len(await _claim_ids(redis, queue_prefix, 120)) == 120
    late = await b.add_bulk([(ProbeData(tag=f"b{i}"), None) for i in range(3)])
    order = await _claim_ids(redis, queue_prefix, 6)
    assert [i for i in order if _who(i) == "org-b"] == [f"org-b~{r.id}" for r in late]
    _assert_turns(order, {"org-a": 180, "org-b": 3})


async def test_priority_is_strict_across_owners_and_fifo_holds_within_one(
    redis: Redis, queue_prefix: str
) -> None:
    a, b = _owned(redis, queue_prefix, "org-a", "org-b")
    low = await a.add_bulk([(ProbeData(tag=f"a{i}"), JobOptions(priority=1)) for i in range(20)])
    urgent = await a.add(ProbeData(tag="a-urgent"))
    b_low = await b.add(ProbeData(tag="b-low"), JobOptions(priority=2))
    b_now = await b.add_bulk([(ProbeData(tag=f"b{i}"), None) for i in range(3)])
    order = await _claim_ids(redis, queue_prefix, 25)
    # Priority 0 of both owners first (in turns), then A's priority 1, then B's priority 2.
    head = {f"org-a~{urgent.id}", *(f"org-b~{r.id}" for r in b_now)}
    assert set(order[:4]) == head
    assert [i for i in order[:4] if _who(i) == "org-b"] == [f"org-b~{r.id}" for r in b_now]
    assert order[4:24] == [f"org-a~{r.id}" for r in low]
    assert order[24] == f"org-b~{b_low.id}"


async def test_a_job_back_in_waiting_queues_behind_its_owner_not_behind_a_burst(
    redis: Redis, queue_prefix: str, queue: Queue, probe: Probe, redis_url: str
) -> None:
    """Manual retry, promote and re-prioritise: each way back into waiting gives the job its
    owner's next turn, not the back of the whole queue."""
    a, b = _owned(redis, queue_prefix, "org-a", "org-b")
    failed = await b.add(ProbeData(tag="b-fail", mode="fail"))
    delayed = await b.add(ProbeData(tag="b-later"), JobOptions(delay=60_000))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert (await b.counts())[JobState.FAILED] == 1
    await a.add_bulk([(ProbeData(tag=f"a{i}"), None) for i in range(200)])
    moved = await b.add(ProbeData(tag="b-moved"), JobOptions(priority=5))

    await b.retry(failed.id)
    await b.promote(delayed.id)
    await b.set_priority(moved.id, 0)
    await assert_fair_order(redis, queue.keys)
    order = await _claim_ids(redis, queue_prefix, 6)
    mine = [f"org-b~{j}" for j in (failed.id, delayed.id, moved.id)]
    assert [i for i in order if _who(i) == "org-b"] == mine
    _assert_turns(order, {"org-a": 200, "org-b": 3})


async def test_one_slot_worker_starts_the_late_owner_before_the_burst_ends(
    redis: Redis, queue_prefix: str, probe: Probe, redis_url: str
) -> None:
    """End to end through a real worker: B's job added while A's burst runs starts within a few
    jobs of A's."""
    a, b = _owned(redis, queue_prefix, "org-a", "org-b")
    await a.add_bulk([(ProbeData(tag=f"a{i}"), None) for i in range(150)])
    worker_done = asyncio.ensure_future(
        run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1)
    )
    while len(probe.runs) < 20:
        await asyncio.sleep(0.005)
    await b.add(ProbeData(tag="b0"))
    started = len(probe.runs)
    await worker_done
    # One job already claimed, one of A's in B's turn (ties go by id), then B's.
    assert probe.tags().index("b0") <= started + 2, (started, probe.tags().index("b0"))


async def test_a_queue_from_before_the_fair_order_keeps_its_backlog_in_the_turns(
    redis: Redis, queue_prefix: str, queue: Queue
) -> None:
    """Jobs waiting when the fair order is deployed hold scores from the old add counter (`seq`):
    new unowned jobs queue behind the old unowned ones, an owner's behind its own, and a new owner
    takes turns with them, as if the old jobs had been added under the fair order."""
    a, b = _owned(redis, queue_prefix, "org-a", "org-b")
    old = [r.id for r in await queue.add_bulk([(ProbeData(tag=f"old{i}"), None) for i in range(4)])]
    old_a = [f"org-a~{r.id}" for r in await a.add_bulk([(ProbeData(tag="a"), None)] * 2)]
    # As the old add script left them: run scores from one counter, no fair state.
    for n, job_id in enumerate([*old, *old_a], start=5000):
        await redis.zadd(queue.keys.wait, {job_id: n})
        if job_id in old_a:
            await redis.zadd(queue.keys.owner_set("org-a", JobState.WAITING), {job_id: n})
    await redis.set(queue.keys.seq, 5005)
    await redis.delete(queue.keys.fair)

    new = (await queue.add(ProbeData(tag="new"))).id
    new_a = f"org-a~{(await a.add(ProbeData(tag='new-a'))).id}"
    new_b = [f"org-b~{r.id}" for r in await b.add_bulk([(ProbeData(tag="new-b"), None)] * 3)]
    await assert_fair_order(redis, queue.keys)
    order = await _claim_ids(redis, queue_prefix, 12)
    assert [i for i in order if _who(i) == UNOWNED] == [*old, new]
    assert [i for i in order if _who(i) == "org-a"] == [*old_a, new_a]
    # The newcomer takes turns with the old backlog: it starts in the first round, and its
    # later jobs do not all run before the old ones either.
    at = [order.index(job_id) for job_id in new_b]
    assert at[0] <= 2 and at[2] >= 4, at
