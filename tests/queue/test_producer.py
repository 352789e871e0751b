"""Adding and managing jobs, with no worker running: state is exact right after each call."""

import asyncio

import pytest
from forgestack_queue.errors import InvalidJobStateError, JobIdInUseError, JobNotFoundError
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue, find_job
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker
from redis.asyncio import Redis

from tests.queue.probe import Probe, ProbeData


async def test_add_stores_a_waiting_job_with_its_data_and_options(queue: Queue) -> None:
    added = await queue.add(ProbeData(tag="a"), JobOptions(attempts=3, priority=2))
    assert added.created
    assert added.state is JobState.WAITING
    job = await queue.get_job(added.id)
    assert job is not None
    assert job.state is JobState.WAITING
    assert job.data == {"tag": "a", "mode": "ok", "seconds": 0.0}
    assert job.options.attempts == 3
    assert job.priority == 2
    assert job.attempts_made == 0
    assert job.created_at is not None


async def test_delayed_job_is_delayed_until_due(queue: Queue) -> None:
    added = await queue.add(ProbeData(tag="later"), JobOptions(delay=60_000))
    assert added.state is JobState.DELAYED
    job = await queue.get_job(added.id)
    assert job is not None and job.delay_until is not None and job.created_at is not None
    assert 59 <= (job.delay_until - job.created_at).total_seconds() <= 61
    assert (await queue.counts())[JobState.DELAYED] == 1


async def test_adding_an_existing_job_id_returns_it_and_creates_nothing(queue: Queue) -> None:
    first = await queue.add(ProbeData(tag="one"), JobOptions(job_id="order-42"))
    again = await queue.add(ProbeData(tag="two"), JobOptions(job_id="order-42"))
    assert first.created and not again.created
    assert again.id == "order-42"
    job = await queue.get_job("order-42")
    assert job is not None and job.data["tag"] == "one"
    assert (await queue.counts())[JobState.WAITING] == 1


async def test_fifty_concurrent_adds_of_one_job_id_create_exactly_one(
    redis_url: str, queue_prefix: str, redis: Redis, probe: Probe
) -> None:
    clients = [Redis.from_url(redis_url) for _ in range(5)]
    try:
        queues = [Queue(c, "probe", prefix=queue_prefix) for c in clients]
        results = await asyncio.gather(
            *(
                queues[i % 5].add(ProbeData(tag=str(i)), JobOptions(job_id="same"))
                for i in range(50)
            )
        )
    finally:
        for c in clients:
            await c.aclose()
    assert sum(r.created for r in results) == 1
    assert {r.id for r in results} == {"same"}
    counts = await Queue(redis, "probe", prefix=queue_prefix).counts()
    assert counts[JobState.WAITING] == 1
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert len(probe.runs) == 1


async def test_bulk_add_creates_every_job_in_one_call(queue: Queue) -> None:
    results = await queue.add_bulk([(ProbeData(tag=str(i)), None) for i in range(100)])
    assert len({r.id for r in results}) == 100
    assert (await queue.counts())[JobState.WAITING] == 100


async def test_find_job_reads_any_queue_and_unknown_ids_are_none(
    queue: Queue, redis: Redis, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="x"))
    found = await find_job(redis, added.id, prefix=queue_prefix)
    assert found is not None and found.queue == "probe"
    assert await find_job(redis, "nope", prefix=queue_prefix) is None
    other = Queue(redis, "other", prefix=queue_prefix)
    assert await other.get_job(added.id) is None


async def test_listing_waiting_jobs_pages_in_run_order(queue: Queue) -> None:
    await queue.add_bulk([(ProbeData(tag=str(i)), JobOptions(priority=i % 3)) for i in range(7)])
    first = await queue.get_jobs(JobState.WAITING, limit=4)
    assert first.next_cursor is not None
    rest = await queue.get_jobs(JobState.WAITING, limit=4, cursor=first.next_cursor)
    assert rest.next_cursor is None
    priorities = [j.priority for j in first.jobs + rest.jobs]
    assert priorities == sorted(priorities)
    assert len({j.id for j in first.jobs + rest.jobs}) == 7


async def test_remove_deletes_a_waiting_job_and_unknown_is_not_found(queue: Queue) -> None:
    added = await queue.add(ProbeData(tag="x"))
    await queue.remove(added.id)
    assert await queue.get_job(added.id) is None
    assert (await queue.counts())[JobState.WAITING] == 0
    with pytest.raises(JobNotFoundError):
        await queue.remove(added.id)


async def test_retry_of_a_job_that_has_not_failed_is_refused(queue: Queue) -> None:
    added = await queue.add(ProbeData(tag="x"))
    with pytest.raises(InvalidJobStateError) as info:
        await queue.retry(added.id)
    assert info.value.state == "waiting"
    with pytest.raises(JobNotFoundError):
        await queue.retry("missing")


async def test_clean_removes_only_jobs_older_than_the_cutoff(queue: Queue) -> None:
    await queue.add_bulk([(ProbeData(tag=str(i)), None) for i in range(3)])
    assert await queue.clean(JobState.WAITING, older_than_s=3600) == 0
    await asyncio.sleep(0.05)
    assert await queue.clean(JobState.WAITING, older_than_s=0.01) == 3
    assert (await queue.counts())[JobState.WAITING] == 0
    with pytest.raises(InvalidJobStateError):
        await queue.clean(JobState.ACTIVE, older_than_s=0)


def test_queue_names_with_a_colon_are_rejected(redis: Redis) -> None:
    with pytest.raises(ValueError, match="no ':'"):
        Queue(redis, "a:b")


async def test_a_job_id_used_by_another_queue_is_a_conflict(queue: Queue, redis: Redis) -> None:
    await queue.add(ProbeData(tag="x"), JobOptions(job_id="shared-id"))
    other = Queue(redis, "other", prefix=queue.prefix)
    with pytest.raises(JobIdInUseError, match="already used by queue 'probe'"):
        await other.add(ProbeData(tag="y"), JobOptions(job_id="shared-id"))


@pytest.mark.parametrize("state", [JobState.FAILED, JobState.WAITING])
async def test_a_cursor_past_any_set_is_an_empty_last_page(queue: Queue, state: JobState) -> None:
    """Schemathesis found it: a 20-digit cursor overflowed Redis's offset (a 500)."""
    await queue.add(ProbeData(tag="a"))
    page = await queue.get_jobs(state, limit=5, cursor="22006797241856005549")
    assert page.jobs == [] and page.next_cursor is None
