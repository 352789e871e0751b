"""Owner-bound queues: isolation by construction, per-owner idempotency, the operator's view."""

import pytest
from forgestack_queue.errors import JobNotFoundError
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.reads import find_job
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker
from redis.asyncio import Redis

from tests.queue.owner_index import assert_indexes_agree
from tests.queue.probe import PROBE, Probe, ProbeData

ORG_A = "7f1c2b9e-0000-4000-8000-00000000000a"
ORG_B = "7f1c2b9e-0000-4000-8000-00000000000b"


@pytest.fixture
def queue_a(redis: Redis, queue_prefix: str) -> Queue:
    return Queue(redis, PROBE, prefix=queue_prefix, owner=ORG_A)


@pytest.fixture
def queue_b(redis: Redis, queue_prefix: str) -> Queue:
    return Queue(redis, PROBE, prefix=queue_prefix, owner=ORG_B)


async def test_two_owners_may_use_one_job_id_and_each_gets_its_own_job(
    queue_a: Queue, queue_b: Queue, queue: Queue
) -> None:
    a = await queue_a.add(ProbeData(tag="a"), JobOptions(job_id="email:welcome"))
    b = await queue_b.add(ProbeData(tag="b"), JobOptions(job_id="email:welcome"))
    again = await queue_a.add(ProbeData(tag="a2"), JobOptions(job_id="email:welcome"))
    assert (a.id, a.created) == ("email:welcome", True)
    assert (b.id, b.created) == ("email:welcome", True)
    assert (again.id, again.created) == ("email:welcome", False)
    job_a, job_b = await queue_a.get_job("email:welcome"), await queue_b.get_job("email:welcome")
    assert job_a is not None and job_a.data == {"tag": "a", "mode": "ok", "seconds": 0.0}
    assert job_b is not None and job_b.data["tag"] == "b"
    assert (job_a.id, job_a.owner) == ("email:welcome", ORG_A)
    assert (await queue.counts())[JobState.WAITING] == 2


async def test_an_owner_cannot_reach_another_owners_jobs(
    queue_a: Queue, queue_b: Queue, redis: Redis, queue_prefix: str
) -> None:
    b = await queue_b.add(ProbeData(tag="b"))
    await queue_b.add(ProbeData(tag="b-old"), JobOptions(job_id="old"))
    assert await queue_a.get_job(b.id) is None
    assert await queue_a.get_job(f"{ORG_B}~{b.id}") is None
    assert await find_job(redis, b.id, prefix=queue_prefix, owner=ORG_A) is None
    assert (await queue_a.get_jobs(JobState.WAITING)).jobs == []
    assert (await queue_a.counts())[JobState.WAITING] == 0
    for action in (queue_a.retry, queue_a.remove):
        for job_id in (b.id, f"{ORG_B}~{b.id}"):
            with pytest.raises(JobNotFoundError):
                await action(job_id)
    assert await queue_a.clean(JobState.WAITING, 0) == 0
    assert (await queue_b.counts())[JobState.WAITING] == 2


async def test_retry_remove_and_clean_act_only_on_the_callers_jobs(
    queue_a: Queue, queue_b: Queue, queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    for q in (queue_a, queue_b):
        await q.add_bulk([(ProbeData(tag=f"f{i}", mode="fail"), None) for i in range(3)])
        await q.add(ProbeData(tag="ok"), JobOptions(job_id="done"))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert (await queue_a.counts())[JobState.FAILED] == 3

    assert await queue_a.retry_failed() == 3
    assert (await queue_b.counts())[JobState.FAILED] == 3
    assert (await queue_a.counts())[JobState.WAITING] == 3

    await queue_a.remove("done")
    assert await queue_a.get_job("done") is None
    assert await queue_b.get_job("done") is not None

    assert await queue_a.clean(JobState.WAITING, 0) == 3
    assert await queue_a.clean(JobState.FAILED, 0) == 0
    assert (await queue_b.counts())[JobState.FAILED] == 3
    counts = await queue.counts()
    assert (counts[JobState.WAITING], counts[JobState.FAILED]) == (0, 3)
    await assert_indexes_agree(queue.redis, queue.keys)


async def test_the_operator_sees_every_owners_jobs_by_full_id(
    queue_a: Queue, queue_b: Queue, queue: Queue, redis: Redis, queue_prefix: str
) -> None:
    await queue_a.add(ProbeData(tag="a"), JobOptions(job_id="k"))
    await queue_b.add(ProbeData(tag="b"), JobOptions(job_id="k"))
    unowned = await queue.add(ProbeData(tag="ops"))
    page = await queue.get_jobs(JobState.WAITING)
    # Listed in run order: the three owners' first jobs share one turn (test_fairness.py).
    assert {(j.id, j.owner) for j in page.jobs} == {
        (f"{ORG_A}~k", ORG_A),
        (f"{ORG_B}~k", ORG_B),
        (unowned.id, None),
    }
    job = await find_job(redis, f"{ORG_B}~k", prefix=queue_prefix)
    assert job is not None and job.data["tag"] == "b"
    await queue.remove(f"{ORG_A}~k")
    assert await queue_a.get_job("k") is None
    assert await assert_indexes_agree(redis, queue.keys) == {ORG_B: {JobState.WAITING: 1}}


async def test_owner_bound_pages_list_only_the_owners_jobs_in_run_order(
    queue_a: Queue, queue_b: Queue
) -> None:
    for i in range(5):
        await queue_a.add(ProbeData(tag=f"a{i}"))
        await queue_b.add(ProbeData(tag=f"b{i}"))
    first = await queue_a.get_jobs(JobState.WAITING, limit=3)
    rest = await queue_a.get_jobs(JobState.WAITING, limit=3, cursor=first.next_cursor)
    assert [j.data["tag"] for j in first.jobs + rest.jobs] == [f"a{i}" for i in range(5)]
    assert rest.next_cursor is None


@pytest.mark.parametrize("owner", ["", "a~b", "a:b", "x" * 65, "a b"])
def test_an_owner_outside_the_pattern_is_refused(redis: Redis, owner: str) -> None:
    with pytest.raises(ValueError, match="owner"):
        Queue(redis, PROBE, owner=owner)
