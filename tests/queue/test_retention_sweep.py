"""The retention sweep removes what each queue's rules no longer keep, whatever rule the jobs
finished under (here: failed by lease expiry while their options kept every failure)."""

import asyncio

from forgestack_queue.keys import job_key_prefix
from forgestack_queue.options import JobOptions, KeepJobs
from forgestack_queue.producer import Queue
from forgestack_queue.retention import QueueRetention, sweep_retention
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker
from redis.asyncio import Redis

from tests.queue.probe import PROBE, Probe, ProbeData

KEEP_EVERY_FAILURE = JobOptions(remove_on_fail=False)
KEEP_TWO_FAILED = KeepJobs(count=2)


async def _fail_by_lease_expiry(queue: Queue, n: int, probe: Probe, redis_url: str) -> None:
    """n jobs claimed by a worker that dies; the next claim fails them (attempts spent)."""
    for i in range(n):
        await queue.add(ProbeData(tag=f"lost-{i}"), KEEP_EVERY_FAILURE)
    k = queue.keys
    await scripts_for(queue.redis).claim(
        keys=list(k.claim_keys),
        args=[job_key_prefix(queue.prefix), n, 50, "dead", 0, PROBE],
    )
    await asyncio.sleep(0.1)
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue.prefix)


async def test_sweep_trims_failures_kept_under_a_looser_rule_to_the_queues_count(
    queue: Queue, probe: Probe, redis_url: str
) -> None:
    await _fail_by_lease_expiry(queue, 5, probe, redis_url)
    assert (await queue.counts())[JobState.FAILED] == 5
    rules = {PROBE: QueueRetention(completed=False, failed=KEEP_TWO_FAILED)}
    removed = await sweep_retention(queue.redis, rules, prefix=queue.prefix)
    assert removed == {PROBE: {JobState.COMPLETED: 0, JobState.FAILED: 3}}
    page = await queue.get_jobs(JobState.FAILED)
    assert len(page.jobs) == 2
    left = {j.id for j in page.jobs}
    keys = [k async for k in queue.redis.scan_iter(match=f"{queue.prefix}:job:*")]
    assert {k.decode().rsplit(":", 1)[1] for k in keys} == left, "removed jobs leave no hash"


async def test_sweep_removes_by_age_and_leaves_other_states_and_queues(
    queue: Queue, probe: Probe, redis_url: str, redis: Redis, queue_prefix: str
) -> None:
    for i in range(3):
        await queue.add(ProbeData(tag=f"done-{i}"))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    waiting = await queue.add(ProbeData(tag="waiting"))
    other = Queue(redis, "other", prefix=queue_prefix)
    await other.add({"x": 1})
    await asyncio.sleep(1.1)
    rules = {PROBE: QueueRetention(completed=KeepJobs(age=1), failed=KeepJobs(age=1))}
    removed = await sweep_retention(redis, rules, prefix=queue_prefix)
    assert removed[PROBE][JobState.COMPLETED] == 3
    counts = await queue.counts()
    assert counts[JobState.COMPLETED] == 0 and counts[JobState.WAITING] == 1
    assert await queue.get_job(waiting.id) is not None
    assert (await other.counts())[JobState.WAITING] == 1
