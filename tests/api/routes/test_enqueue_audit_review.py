"""Outside review of the enqueue route's one-call job and event: a Redis that lost its scripts
(restarted, or SCRIPT FLUSH) still gets each new job with its one event, concurrent first calls
included."""

import asyncio

import httpx
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from redis.asyncio import Redis

JOBS = "/api/v1/queues/my-new-job/jobs"
DATA = {"user_id": "u1", "action": "greet"}


async def test_after_a_script_flush_each_new_job_still_has_its_one_event(
    client: httpx.AsyncClient, redis: Redis, queue_prefix: str
) -> None:
    first = await client.post(JOBS, json={"data": DATA})
    assert first.status_code == 202, first.text
    await redis.script_flush()
    answers = await asyncio.gather(*(client.post(JOBS, json={"data": DATA}) for _ in range(6)))
    assert [a.status_code for a in answers] == [202] * 6, [a.text for a in answers]
    await redis.script_flush()
    keyed = {"data": DATA, "options": {"job_id": "after-flush"}}
    assert (await client.post(JOBS, json=keyed)).status_code == 202
    assert (await client.post(JOBS, json=keyed)).status_code == 200
    ids = sorted([first.json()["id"], *(a.json()["id"] for a in answers), "after-flush"])
    audit = Queue(redis, "audit-logs", prefix=queue_prefix)
    events = (await audit.get_jobs(JobState.WAITING, limit=100)).jobs
    assert sorted(e.data["resource_id"] for e in events) == ids
    jobs = Queue(redis, "my-new-job", prefix=queue_prefix)
    assert (await jobs.counts())[JobState.WAITING] == len(ids)


async def test_concurrent_adds_of_one_job_id_make_one_job_and_one_event(
    client: httpx.AsyncClient, redis: Redis, queue_prefix: str
) -> None:
    keyed = {"data": DATA, "options": {"job_id": "same-id"}}
    answers = await asyncio.gather(*(client.post(JOBS, json=keyed) for _ in range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [202], [a.text for a in answers]
    audit = Queue(redis, "audit-logs", prefix=queue_prefix)
    events = (await audit.get_jobs(JobState.WAITING, limit=100)).jobs
    assert [e.data["resource_id"] for e in events] == ["same-id"]
