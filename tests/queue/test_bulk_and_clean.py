"""Issue 14 points 2 and 4: bulk add is all or nothing; clean works at any size in batches."""

import time

import pytest
from forgestack_queue.errors import JobIdInUseError
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from redis.asyncio import Redis

from tests.queue.owner_index import assert_indexes_agree
from tests.queue.probe import ProbeData
from tests.queue.seed import seed_finished


async def test_a_bulk_add_with_one_clashing_id_writes_nothing(
    queue: Queue, redis: Redis, queue_prefix: str
) -> None:
    other = Queue(redis, "other", prefix=queue_prefix)
    await other.add(ProbeData(tag="theirs"), JobOptions(job_id="taken"))
    batch = [
        (ProbeData(tag="a"), None),
        (ProbeData(tag="b"), JobOptions(job_id="taken")),
        (ProbeData(tag="c"), JobOptions(delay=1000)),
    ]
    for _ in range(2):
        with pytest.raises(JobIdInUseError) as caught:
            await queue.add_bulk(batch)
        assert (caught.value.job_id, caught.value.queue) == ("taken", "other")
    assert sum((await queue.counts()).values()) == 0
    assert len(await redis.keys(queue.keys.job("*"))) == 1


async def test_a_bulk_add_that_repeats_one_new_id_creates_it_once(queue: Queue) -> None:
    rows = await queue.add_bulk(
        [(ProbeData(tag="a"), JobOptions(job_id="k")), (ProbeData(tag="b"), JobOptions(job_id="k"))]
    )
    assert [(r.id, r.created) for r in rows] == [("k", True), ("k", False)]
    assert (await queue.counts())[JobState.WAITING] == 1


async def test_clean_removes_more_jobs_than_one_script_could_unpack(
    queue: Queue, redis: Redis
) -> None:
    await seed_finished(queue, JobState.COMPLETED, 9000)
    await seed_finished(queue, JobState.FAILED, 500, owner="org-a")
    assert await queue.clean(JobState.COMPLETED, 0, limit=20_000) == 9000
    assert await queue.clean(JobState.FAILED, 0, limit=20_000) == 500
    assert sum((await queue.counts()).values()) == 0
    assert await redis.keys(queue.keys.job("*")) == []
    await assert_indexes_agree(redis, queue.keys)


async def test_clean_of_waiting_jobs_scans_a_large_backlog_in_windows(
    queue: Queue, redis: Redis
) -> None:
    """Waiting jobs are not ordered by age: every other one of 12,000 is old, so each scan window
    both removes and skips, and the next window must start where the last one stopped."""
    ids: list[str] = []
    for start in range(0, 12_000, 2000):
        added = await queue.add_bulk(
            [(ProbeData(tag=str(i)), None) for i in range(start, start + 2000)]
        )
        ids += [a.id for a in added]
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in ids[::2]:
            pipe.hset(queue.keys.job(job_id), "created_at", int((time.time() - 3600) * 1000))
        await pipe.execute()
    assert await queue.clean(JobState.WAITING, 60, limit=100_000) == 6000
    page = await queue.get_jobs(JobState.WAITING, limit=10_000)
    assert [j.id for j in page.jobs] == ids[1::2]
    assert await queue.clean(JobState.WAITING, 0, limit=2500) == 2500
    assert (await queue.counts())[JobState.WAITING] == 3500
