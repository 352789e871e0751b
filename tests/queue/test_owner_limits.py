"""Per-owner limits (QueueLimits.per_owner): each organisation's own concurrency cap and rate limit,
enforced inside the atomic claim across workers; a limited owner's backlog is parked, not
re-examined on every claim, and never holds back other owners or the operator's jobs."""

import asyncio
from collections import Counter

from forgestack_queue.claims import Claimer
from forgestack_queue.controls import QueueControls
from forgestack_queue.job import Job
from forgestack_queue.limits import OwnerLimits, QueueLimits, RateLimit
from forgestack_queue.producer import Queue
from forgestack_queue.runner import Handler
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, running
from redis.asyncio import Redis

from tests.queue.fair_order import assert_fair_order
from tests.queue.owner_index import assert_indexes_agree
from tests.queue.probe import PROBE, ProbeData
from tests.queue.test_queue_limits import until_done


class OwnerGauge:
    """Per owner (the tag's first letter): jobs running at once, and the start order."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.starts: list[tuple[str, float]] = []

    async def handle(self, job: Job[ProbeData]) -> str:
        who = job.data.tag[0]
        self.starts.append((job.data.tag, asyncio.get_running_loop().time()))
        self.now[who] += 1
        self.peak[who] = max(self.peak[who], self.now[who])
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.now[who] -= 1
        return job.data.tag

    def handler(self) -> Handler[ProbeData, str]:
        return Handler(queue=PROBE, fn=self.handle, data_model=ProbeData)


async def _assert_claimed_in_add_order(queue: Queue, who: str) -> None:
    """FIFO within an owner: its jobs were claimed (processed_at, server ms) in the order of their
    tags. Handler start order would not do: two workers' tasks interleave in one event loop."""
    page = await queue.get_jobs(JobState.COMPLETED, limit=1000)
    mine = sorted((j.data["tag"], j.processed_at) for j in page.jobs if j.data["tag"][0] == who)
    times = [at for _, at in mine]
    assert all(at is not None for at in times) and times == sorted(times), mine  # type: ignore[type-var]


def _owned(redis: Redis, prefix: str, *owners: str) -> list[Queue]:
    return [Queue(redis, PROBE, prefix=prefix, owner=o) for o in owners]


async def _agree(redis: Redis, queue: Queue) -> None:
    await assert_fair_order(redis, queue.keys, given_back=True)
    await assert_indexes_agree(redis, queue.keys)


async def test_each_owner_runs_at_most_its_cap_while_others_use_the_free_slots(
    queue: Queue, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    a, b = _owned(redis, queue_prefix, "org-a", "org-b")
    gauge = OwnerGauge(0.05)
    limits = {PROBE: QueueLimits(per_owner=OwnerLimits(concurrency=2))}
    workers = [
        make_worker(
            redis_url,
            [gauge.handler()],
            prefix=queue_prefix,
            burst=False,
            max_jobs=5,
            limits=limits,
            block_ms=5_000,
        )
        for _ in range(2)
    ]
    await a.add_bulk([(ProbeData(tag=f"a{i:02d}"), None) for i in range(30)])
    await b.add_bulk([(ProbeData(tag=f"b{i:02d}"), None) for i in range(6)])
    await queue.add_bulk([(ProbeData(tag=f"u{i:02d}"), None) for i in range(6)])
    async with running(*workers):
        # 30 of A's at 2 at once, 50 ms each: at least 0.75 s; a missed hand-back would take
        # the 1 s backstop per job instead.
        await until_done(queue, 42, 8)
    assert gauge.peak["a"] == 2 and gauge.peak["b"] == 2
    # Unowned jobs answer to the queue's limits only.
    assert gauge.peak["u"] > 2
    # FIFO within each owner, parking or not.
    await _assert_claimed_in_add_order(queue, "a")
    await _assert_claimed_in_add_order(queue, "b")
    # B was not held back behind A's backlog: its jobs all started before A's last third.
    last_b = max(t for tag, t in gauge.starts if tag[0] == "b")
    assert last_b < sorted(t for tag, t in gauge.starts if tag[0] == "a")[20]
    await _agree(redis, queue)
    assert not await redis.exists(f"{queue.keys.base}parked")


async def test_an_owner_rate_limit_holds_in_every_window_and_only_for_that_owner(
    queue: Queue, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    window_ms, most = 300, 3
    a, b = _owned(redis, queue_prefix, "org-a", "org-b")
    gauge = OwnerGauge(0.0)
    rate = RateLimit(max=most, duration_ms=window_ms)
    limits = {PROBE: QueueLimits(per_owner=OwnerLimits(rate_limit=rate))}
    workers = [
        make_worker(redis_url, [gauge.handler()], prefix=queue_prefix, burst=False, limits=limits)
        for _ in range(2)
    ]
    await a.add_bulk([(ProbeData(tag=f"a{i:02d}"), None) for i in range(10)])
    await b.add_bulk([(ProbeData(tag=f"b{i:02d}"), None) for i in range(3)])
    async with running(*workers):
        await until_done(queue, 13, 10)
    page = await queue.get_jobs(JobState.COMPLETED, limit=100)
    starts = sorted(
        j.processed_at.timestamp() * 1000
        for j in page.jobs
        if j.owner == "org-a" and j.processed_at
    )
    assert len(starts) == 10
    for first in starts:
        assert len([t for t in starts if first <= t < first + window_ms]) <= most, starts
    assert starts[-1] - starts[0] >= 3 * window_ms - 5  # four windows of A's starts
    # B's three fit its own window: they ran in A's first window, not after A's backlog.
    b_starts = [t for tag, t in gauge.starts if tag[0] == "b"]
    a_first = min(t for tag, t in gauge.starts if tag[0] == "a")
    assert max(b_starts) - a_first < window_ms / 1000
    await _assert_claimed_in_add_order(queue, "a")


async def test_parked_jobs_stay_waiting_and_run_once_the_limit_is_lifted(
    queue: Queue, redis: Redis, queue_prefix: str
) -> None:
    """A claim parks the backlog of an owner at its cap (listed and counted as waiting, indexes
    in step); once no worker enforces the cap any more, the next claims give it back in order."""
    (a,) = _owned(redis, queue_prefix, "org-a")
    added = await a.add_bulk([(ProbeData(tag=f"a{i}"), None) for i in range(8)])
    scripts = scripts_for(redis)
    capped = {PROBE: QueueLimits(per_owner=OwnerLimits(concurrency=1))}
    claimer = Claimer(scripts, queue_prefix, [PROBE], worker_id="w", lease_ms=60_000, limits=capped)
    claimed, next_due, now = await claimer.claim(10)
    assert [j.id for j in claimed] == [f"org-a~{added[0].id}"]
    assert 0 < next_due - now <= 1000  # the parked owner is looked at again within a second
    assert (await a.counts())[JobState.WAITING] == 7
    assert [j.id for j in (await a.get_jobs(JobState.WAITING)).jobs] == [r.id for r in added[1:]]
    await _agree(redis, queue)
    # Still capped: nothing more, and nothing re-examined.
    assert (await claimer.claim(10))[0] == []

    free = Claimer(scripts, queue_prefix, [PROBE], worker_id="w2", lease_ms=60_000)
    assert (await free.claim(10))[0] == []  # parked until the owner is looked at again
    await asyncio.sleep(1.05)
    claimed, _, _ = await free.claim(10)
    assert [j.id for j in claimed] == [f"org-a~{r.id}" for r in added[1:]]
    await _agree(redis, queue)
    assert not await redis.hexists(queue.keys.ctl, "parking")


async def test_the_operator_sets_per_owner_limits_over_the_catalog(
    queue: Queue, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    controls = QueueControls(redis, PROBE, prefix=queue_prefix)
    override = QueueLimits(
        concurrency=10,
        per_owner=OwnerLimits(concurrency=1, rate_limit=RateLimit(max=5, duration_ms=1000)),
    )
    await controls.set_limits(override)
    assert (await controls.read()).limits_override == override
    a, b = _owned(redis, queue_prefix, "org-a", "org-b")
    gauge = OwnerGauge(0.05)
    workers = [
        make_worker(redis_url, [gauge.handler()], prefix=queue_prefix, burst=False, max_jobs=5)
        for _ in range(2)
    ]
    await a.add_bulk([(ProbeData(tag=f"a{i}"), None) for i in range(4)])
    await b.add_bulk([(ProbeData(tag=f"b{i}"), None) for i in range(4)])
    async with running(*workers):
        await until_done(queue, 8, 10)
    assert gauge.peak["a"] == 1 and gauge.peak["b"] == 1
    await controls.set_limits(QueueLimits(concurrency=10))
    assert (await controls.read()).limits_override == QueueLimits(concurrency=10)


async def test_a_lost_attempt_gives_its_owner_slot_back_at_once(
    queue: Queue, redis: Redis, queue_prefix: str
) -> None:
    """The claim that recovers an expired lease hands the owner's slot to its next parked job,
    without waiting for the once-a-second look at parked owners."""
    (a,) = _owned(redis, queue_prefix, "org-a")
    added = await a.add_bulk([(ProbeData(tag=f"a{i}"), None) for i in range(3)])
    capped = {PROBE: QueueLimits(per_owner=OwnerLimits(concurrency=1))}
    claimer = Claimer(
        scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=100, limits=capped
    )
    claimed, _, _ = await claimer.claim(10)
    assert [j.id for j in claimed] == [f"org-a~{added[0].id}"]
    await asyncio.sleep(0.15)
    claimed, _, _ = await claimer.claim(10)
    assert [j.id for j in claimed] == [f"org-a~{added[1].id}"]
    assert (await a.get_job(added[0].id)).state is JobState.FAILED  # type: ignore[union-attr]
    await _agree(redis, queue)
