"""Promote, priority change and cancel of waiting or delayed jobs: one atomic script each, the
owner's indexes kept in step, another owner's job not found."""

import pytest
from forgestack_queue.errors import InvalidJobStateError, JobNotFoundError
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker
from redis.asyncio import Redis

from tests.queue.owner_index import assert_indexes_agree
from tests.queue.probe import PROBE, Probe


@pytest.fixture
def acme(redis: Redis, queue_prefix: str) -> Queue:
    return Queue(redis, PROBE, prefix=queue_prefix, owner="acme")


async def test_a_promoted_delayed_job_runs_now(
    acme: Queue, redis: Redis, redis_url: str, queue_prefix: str, probe: Probe
) -> None:
    added = await acme.add({"tag": "later"}, JobOptions(delay=3_600_000))
    record = await acme.promote(added.id)
    assert record.state is JobState.WAITING
    assert record.delay_until is None
    await assert_indexes_agree(redis, acme.keys)
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert probe.tags() == ["later"]
    with pytest.raises(InvalidJobStateError):
        await acme.promote(added.id)


async def test_another_owner_cannot_promote_reprioritise_or_cancel(
    acme: Queue, redis: Redis, queue_prefix: str
) -> None:
    added = await acme.add({"tag": "mine"}, JobOptions(delay=60_000))
    other = Queue(redis, PROBE, prefix=queue_prefix, owner="globex")
    for job_id in (added.id, f"acme~{added.id}"):
        for action in (other.promote, other.cancel):
            with pytest.raises(JobNotFoundError):
                await action(job_id)
        with pytest.raises(JobNotFoundError):
            await other.set_priority(job_id, 3)
    record = await acme.get_job(added.id)
    assert record is not None and record.state is JobState.DELAYED and record.priority == 0


async def test_a_changed_priority_reorders_the_waiting_jobs(
    acme: Queue, redis: Redis, redis_url: str, queue_prefix: str, probe: Probe
) -> None:
    ids = [(await acme.add({"tag": t}, JobOptions(priority=5))).id for t in ("a", "b", "c")]
    record = await acme.set_priority(ids[2], 1)
    assert record.priority == 1 and record.state is JobState.WAITING
    delayed = await acme.add({"tag": "d"}, JobOptions(delay=60_000, priority=9))
    assert (await acme.set_priority(delayed.id, 0)).priority == 0
    await assert_indexes_agree(redis, acme.keys)
    await acme.promote(delayed.id)
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1)
    assert probe.tags() == ["d", "c", "a", "b"]
    with pytest.raises(InvalidJobStateError):
        await acme.set_priority(ids[0], 2)  # completed
    with pytest.raises(ValueError, match="priority"):
        await acme.set_priority(ids[0], -1)


async def test_cancelling_waiting_and_delayed_jobs_fails_them_for_good(
    acme: Queue, redis: Redis, redis_url: str, queue_prefix: str, probe: Probe
) -> None:
    waiting = await acme.add({"tag": "w"}, JobOptions(attempts=3))
    delayed = await acme.add({"tag": "d"}, JobOptions(delay=60_000, attempts=3))
    for job_id in (waiting.id, delayed.id):
        record = await acme.cancel(job_id)
        assert record.state is JobState.FAILED
        assert record.failed_reason == "cancelled"
    await assert_indexes_agree(redis, acme.keys)
    assert (await acme.counts())[JobState.FAILED] == 2
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert probe.tags() == []
    with pytest.raises(InvalidJobStateError):
        await acme.cancel(waiting.id)
