"""Issue 14 points 9, 10, 11: retention on lease expiry, bounded trims, bounded defaults."""

import asyncio
import time

from forgestack_queue.keys import job_key_prefix
from forgestack_queue.options import JobOptions, KeepJobs
from forgestack_queue.producer import Queue
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker

from tests.queue.owner_index import assert_indexes_agree
from tests.queue.probe import PROBE, Probe, ProbeData
from tests.queue.seed import seed_finished


async def _lose_claims(queue: Queue, want: int) -> None:
    """Claims as a worker that is then SIGKILLed, and waits out the lease."""
    k = queue.keys
    await scripts_for(queue.redis).claim(
        keys=list(k.claim_keys),
        args=[job_key_prefix(queue.prefix), want, 50, "dead", 0, PROBE],
    )
    await asyncio.sleep(0.1)


async def test_a_job_failed_by_lease_expiry_is_removed_per_remove_on_fail(
    queue: Queue, probe: Probe, redis_url: str
) -> None:
    gone = await queue.add(ProbeData(tag="gone"), JobOptions(remove_on_fail=True))
    await _lose_claims(queue, 1)
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue.prefix)
    assert await queue.get_job(gone.id) is None
    assert (await queue.counts())[JobState.FAILED] == 0


async def test_lease_expiry_failures_keep_only_the_newest_n(
    redis_url: str, queue_prefix: str, probe: Probe, queue: Queue
) -> None:
    owned = Queue(queue.redis, PROBE, prefix=queue_prefix, owner="org-a")
    await owned.add_bulk([(ProbeData(tag=str(i)), JobOptions(remove_on_fail=2)) for i in range(5)])
    await _lose_claims(queue, 5)
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert (await owned.counts())[JobState.FAILED] == 2
    await assert_indexes_agree(queue.redis, queue.keys)


async def test_a_count_rule_trims_at_most_a_thousand_jobs_per_call(
    queue: Queue, probe: Probe, redis_url: str
) -> None:
    await seed_finished(queue, JobState.COMPLETED, 2500)
    await queue.add(ProbeData(tag="last"), JobOptions(remove_on_complete=10))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue.prefix)
    assert (await queue.counts())[JobState.COMPLETED] == 2501 - 1000
    assert await queue.trim(JobState.COMPLETED, count=10, limit=1000) == 1000
    assert await queue.trim(JobState.COMPLETED, count=10, limit=1000) == 491
    assert await queue.trim(JobState.COMPLETED, count=10, limit=1000) == 0
    page = await queue.get_jobs(JobState.COMPLETED, limit=1)
    assert page.jobs[0].data["tag"] == "last"


async def test_trim_by_age_removes_only_older_jobs(queue: Queue) -> None:
    await seed_finished(queue, JobState.FAILED, 30, owner="org-a")
    assert await queue.trim(JobState.FAILED, age_s=3600) == 0
    assert await queue.trim(JobState.FAILED, age_s=1, limit=20) == 20
    assert await queue.trim(JobState.FAILED, age_s=1, limit=20) == 10
    await assert_indexes_agree(queue.redis, queue.keys)


def test_the_layers_own_defaults_bound_retention() -> None:
    opts = JobOptions()
    assert opts.remove_on_complete == KeepJobs(age=3600, count=1000)
    assert opts.remove_on_fail == KeepJobs(age=7 * 24 * 3600, count=10_000)


async def test_default_options_keep_at_most_a_thousand_completed_jobs(
    queue: Queue, probe: Probe, redis_url: str
) -> None:
    await seed_finished(queue, JobState.COMPLETED, 1000)
    await queue.add(ProbeData(tag="one more"))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue.prefix)
    assert (await queue.counts())[JobState.COMPLETED] == 1000


async def test_a_lease_expiry_failure_follows_the_default_retention(
    queue: Queue, probe: Probe, redis_url: str
) -> None:
    """Default options are not stored (opts '{}'); the claim script applies JobOptions' default
    remove_on_fail (a week, 10,000 jobs) from the constants scripts.py writes from the model."""
    await seed_finished(queue, JobState.FAILED, 10_000)
    week_old = time.time() * 1000 - 8 * 24 * 3600 * 1000
    await queue.redis.hset(
        queue.keys.job("week-old"),
        mapping={"queue": queue.name, "state": "failed", "data": "{}", "created_at": int(week_old)},
    )
    await queue.redis.zadd(queue.keys.failed, {"week-old": week_old})
    lost = await queue.add(ProbeData(tag="lost"))
    assert await queue.redis.hget(queue.keys.job(lost.id), "opts") == b"{}"
    await _lose_claims(queue, 1)
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue.prefix)
    assert (await queue.counts())[JobState.FAILED] == 10_000
    assert await queue.get_job("week-old") is None, "past the default age"
    assert await queue.get_job("seed-0") is None, "the oldest over the default count"
    job = await queue.get_job(lost.id)
    assert job is not None and job.state is JobState.FAILED
