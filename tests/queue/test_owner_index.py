"""Every script that moves a job keeps its owner's index equal to the queue's own sets, and the
fair order's clocks and tags consistent with the wait set."""

import asyncio
import json

from forgestack_queue.claims import Claimer
from forgestack_queue.keys import job_key_prefix, queue_key_prefix
from forgestack_queue.options import Backoff, JobOptions, KeepJobs
from forgestack_queue.producer import Queue
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker
from redis.asyncio import Redis

from tests.queue.fair_order import assert_fair_order
from tests.queue.owner_index import assert_indexes_agree
from tests.queue.probe import PROBE, Probe, ProbeData


async def _agree(redis: Redis, queue: Queue) -> dict[str, dict[JobState, int]]:
    await assert_fair_order(redis, queue.keys)
    return await assert_indexes_agree(redis, queue.keys)


async def _claim_as_dead_worker(queue: Queue, want: int, lease_ms: int) -> None:
    k = queue.keys
    await scripts_for(queue.redis).claim(
        keys=list(k.claim_keys),
        args=[job_key_prefix(queue.prefix), want, lease_ms, "dead", 0, PROBE],
    )


async def test_indexes_follow_jobs_through_every_move(
    redis: Redis, queue_prefix: str, queue: Queue, probe: Probe, redis_url: str
) -> None:
    owners = [Queue(redis, PROBE, prefix=queue_prefix, owner=o) for o in ("org-a", "org-b")]
    keep_two = JobOptions(remove_on_complete=2, remove_on_fail=KeepJobs(count=10))
    for q in owners:
        await q.add_bulk([(ProbeData(tag="ok"), keep_two) for _ in range(4)])
        await q.add(ProbeData(tag="later"), JobOptions(delay=150))
        await q.add(ProbeData(tag="x", mode="fail-until-2"), JobOptions(attempts=2))
        await q.add(
            ProbeData(tag="y", mode="fail-until-2"),
            JobOptions(attempts=2, backoff=Backoff(type="fixed", delay=100)),
        )
        await q.add(ProbeData(tag="bad", mode="fail"), JobOptions(job_id="bad"))
    await queue.add(ProbeData(tag="unowned"))
    await _agree(redis, queue)

    # Lease recovery: one job requeued (attempts left), one failed (last attempt).
    await owners[0].add(ProbeData(tag="lost-retry"), JobOptions(attempts=2, priority=1))
    await owners[1].add(ProbeData(tag="lost-fail"), JobOptions(priority=1))
    await _claim_as_dead_worker(queue, 20, lease_ms=100)
    await _agree(redis, queue)
    active = [m.decode() for m in await redis.zrange(queue.keys.active, 0, -1)]
    held = [(job_id, await redis.hget(queue.keys.job(job_id), "token")) for job_id in active]
    await scripts_for(redis).extend(
        keys=[queue.keys.active],
        args=[job_key_prefix(queue.prefix), 150, *(part for pair in held for part in pair)],
    )
    await _agree(redis, queue)
    await asyncio.sleep(0.2)

    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    counts = await _agree(redis, queue)
    # Four completed each were trimmed to the newest two per queue, not per owner.
    assert sum(c.get(JobState.COMPLETED, 0) for c in counts.values()) <= 7
    assert counts["org-a"][JobState.FAILED] >= 1 and counts["org-b"][JobState.FAILED] >= 1

    assert await owners[0].retry_failed() >= 1
    await _agree(redis, queue)
    await owners[1].retry("bad")
    await _agree(redis, queue)
    await owners[1].remove("bad")
    assert await queue.trim(JobState.COMPLETED, count=1) >= 1
    await _agree(redis, queue)
    await queue.clean(JobState.WAITING, 0)
    await queue.clean(JobState.COMPLETED, 0)
    await queue.clean(JobState.FAILED, 0)
    counts = await _agree(redis, queue)
    assert all(n == 0 for c in counts.values() for n in c.values())
    for q in owners:
        assert all(n == 0 for n in (await q.counts()).values())


async def test_a_corrupt_owned_record_is_quarantined_with_its_index(
    redis: Redis, queue_prefix: str, queue: Queue, probe: Probe, redis_url: str
) -> None:
    owned = Queue(redis, PROBE, prefix=queue_prefix, owner="org-a")
    now_due = await owned.add(ProbeData(tag="w"))
    delayed = await owned.add(ProbeData(tag="d"), JobOptions(delay=50))
    for local in (now_due.id, delayed.id):
        await redis.delete(queue.keys.job(f"org-a~{local}"))
        await redis.set(queue.keys.job(f"org-a~{local}"), "overwritten")
    await asyncio.sleep(0.1)
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert (await owned.counts())[JobState.FAILED] == 2
    page = await owned.get_jobs(JobState.FAILED)
    assert {j.id for j in page.jobs} == {now_due.id, delayed.id}
    await _agree(redis, queue)


async def test_indexes_and_fair_order_follow_the_single_job_moves(
    redis: Redis, queue_prefix: str, queue: Queue
) -> None:
    """Promote, re-prioritise, cancel, a released attempt and an undone claim, each checked."""
    a, b = (Queue(redis, PROBE, prefix=queue_prefix, owner=o) for o in ("org-a", "org-b"))
    await a.add_bulk([(ProbeData(tag=f"a{i}"), None) for i in range(6)])
    later = await b.add(ProbeData(tag="later"), JobOptions(delay=60_000))
    soon = await b.add(ProbeData(tag="soon"), JobOptions(delay=60_000, priority=3))
    now = await b.add(ProbeData(tag="now"))
    unowned = await queue.add(ProbeData(tag="op"), JobOptions(priority=2))
    await _agree(redis, queue)
    await b.promote(later.id)
    await _agree(redis, queue)
    await b.set_priority(soon.id, 1)
    await b.promote(soon.id)
    await _agree(redis, queue)
    await b.set_priority(now.id, 2)
    await queue.set_priority(unowned.id, 0)
    await _agree(redis, queue)
    await b.cancel(now.id)
    await _agree(redis, queue)

    scripts = scripts_for(redis)
    claimer = Claimer(scripts, queue_prefix, [PROBE], worker_id="w1", lease_ms=60_000)
    claimed, _, _ = await claimer.claim(3)
    await _agree(redis, queue)
    released = await scripts.release_claim(
        keys=list(queue.keys.release_keys),
        args=[job_key_prefix(queue_prefix), claimed[0].token.rsplit(":", 2)[0]],
    )
    assert released == 3
    back = frozenset(job.id for job in claimed)
    await assert_fair_order(redis, queue.keys, released=back)
    await assert_indexes_agree(redis, queue.keys)
    claimed_again, _, _ = await claimer.claim(2)
    # Back in the places they were claimed from: the same jobs come first again, in order.
    assert [job.id for job in claimed_again] == [job.id for job in claimed[:2]]
    rows = [[PROBE, job.id, job.token, "release", "", "", -1, -1, 0] for job in claimed_again]
    assert await scripts.finish(
        args=[job_key_prefix(queue_prefix), queue_key_prefix(queue_prefix), json.dumps(rows)]
    ) == [1, 1]
    await assert_fair_order(redis, queue.keys, released=back)
    counts = await assert_indexes_agree(redis, queue.keys)
    assert counts["org-a"][JobState.WAITING] == 6 and counts["org-b"][JobState.WAITING] == 2
