"""Retention of finished jobs and the operator's view of failures: retry, bulk retry, remove, clean."""

import pytest
from forgestack_queue.errors import InvalidJobStateError
from forgestack_queue.options import JobOptions, KeepJobs
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker

from tests.queue.probe import Probe, ProbeData


async def test_remove_on_fail_count_keeps_only_the_newest_failures(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    ids = [
        (await queue.add(ProbeData(tag=str(i), mode="fail"), JobOptions(remove_on_fail=3))).id
        for i in range(6)
    ]
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1)
    page = await queue.get_jobs(JobState.FAILED)
    assert [j.data["tag"] for j in page.jobs] == ["5", "4", "3"]
    assert await queue.get_job(ids[0]) is None
    assert (await queue.counts())[JobState.FAILED] == 3


async def test_remove_on_complete_true_deletes_the_job_when_done(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="x"), JobOptions(remove_on_complete=True))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert probe.tags() == ["x"]
    assert await queue.get_job(added.id) is None
    assert (await queue.counts())[JobState.COMPLETED] == 0


async def test_remove_on_complete_age_drops_older_completed_jobs(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    old = await queue.add(ProbeData(tag="old"), JobOptions(remove_on_complete=KeepJobs(age=1)))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    await queue.redis.zincrby(queue.keys.completed, -5000, old.id)  # finished 5 s earlier
    new = await queue.add(ProbeData(tag="new"), JobOptions(remove_on_complete=KeepJobs(age=1)))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert await queue.get_job(old.id) is None
    assert await queue.get_job(new.id) is not None


async def test_failed_job_is_retried_by_an_operator_with_attempts_reset(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    probe.broken = True
    added = await queue.add(ProbeData(tag="x", mode="fail-if-broken"), JobOptions(attempts=2))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    probe.broken = False
    job = await queue.retry(added.id)
    assert job.state is JobState.WAITING
    assert job.attempts_made == 0
    assert job.failed_reason is None
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    done = await queue.get_job(added.id)
    assert done is not None and done.state is JobState.COMPLETED
    assert done.attempts_made == 1
    assert [a for _, a, _ in probe.runs] == [1, 2, 1]


async def test_bulk_retry_moves_every_failed_job_back(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    await queue.add_bulk([(ProbeData(tag=str(i), mode="fail"), None) for i in range(5)])
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert (await queue.counts())[JobState.FAILED] == 5
    assert await queue.retry_failed(batch=2) == 5
    counts = await queue.counts()
    assert counts[JobState.FAILED] == 0
    assert counts[JobState.WAITING] == 5


async def test_completed_and_failed_jobs_can_be_removed_and_cleaned(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    ok = await queue.add(ProbeData(tag="ok"))
    bad = await queue.add(ProbeData(tag="bad", mode="fail"))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    await queue.remove(ok.id)
    assert await queue.get_job(ok.id) is None
    assert await queue.clean(JobState.FAILED, older_than_s=3600) == 0
    await queue.redis.zincrby(queue.keys.failed, -7_200_000, bad.id)
    assert await queue.clean(JobState.FAILED, older_than_s=3600) == 1
    assert await queue.get_job(bad.id) is None


async def test_an_active_job_cannot_be_removed(queue: Queue, redis_url: str) -> None:
    added = await queue.add(ProbeData(tag="x"))
    await queue.redis.hset(queue.keys.job(added.id), "state", "active")
    with pytest.raises(InvalidJobStateError):
        await queue.remove(added.id)


async def test_failed_jobs_list_newest_first_with_a_cursor(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    for i in range(5):
        await queue.add(ProbeData(tag=str(i), mode="fail"))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1)
    first = await queue.get_jobs(JobState.FAILED, limit=3)
    second = await queue.get_jobs(JobState.FAILED, limit=3, cursor=first.next_cursor)
    assert [j.data["tag"] for j in first.jobs + second.jobs] == ["4", "3", "2", "1", "0"]
    assert second.next_cursor is None
