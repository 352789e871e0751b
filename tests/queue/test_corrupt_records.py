"""Reads never fail on a bad record: it is listed, flagged corrupt with the reason."""

from forgestack_queue.producer import Queue
from forgestack_queue.reads import find_job
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker
from redis.asyncio import Redis

from tests.queue.probe import Probe, ProbeData


async def _completed(queue: Queue, probe: Probe, redis_url: str, n: int) -> list[str]:
    added = await queue.add_bulk([(ProbeData(tag=str(i)), None) for i in range(n)])
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue.prefix)
    return [a.id for a in added]


async def test_a_completed_key_that_is_not_a_hash_is_listed_as_corrupt(
    queue: Queue, probe: Probe, redis_url: str
) -> None:
    ids = await _completed(queue, probe, redis_url, 3)
    await queue.redis.delete(queue.keys.job(ids[1]))
    await queue.redis.rpush(queue.keys.job(ids[1]), "overwritten")
    page = await queue.get_jobs(JobState.COMPLETED)
    assert len(page.jobs) == 3
    bad = next(j for j in page.jobs if j.id == ids[1])
    assert bad.state is JobState.COMPLETED and bad.corrupt == "job record is not a Redis hash"
    assert all(j.corrupt is None for j in page.jobs if j.id != ids[1])
    job = await find_job(queue.redis, ids[1], prefix=queue.prefix)
    assert job is not None and job.corrupt is not None and "list" in job.corrupt


async def test_out_of_range_partial_and_garbled_fields_read_as_corrupt(
    queue: Queue, probe: Probe, redis_url: str, redis: Redis
) -> None:
    ids = await _completed(queue, probe, redis_url, 5)
    await redis.hset(queue.keys.job(ids[0]), "finished_at", str(300_000_000_000_000_000))
    await redis.hset(queue.keys.job(ids[1]), mapping={"attempts_started": "many", "priority": "x"})
    await redis.hset(queue.keys.job(ids[2]), mapping={"state": "exploded", "opts": "{not json"})
    await redis.hdel(queue.keys.job(ids[3]), "data", "state")
    await redis.hset(queue.keys.job(ids[4]), "created_at", "-5")
    page = await queue.get_jobs(JobState.COMPLETED)
    reasons = {j.id: j.corrupt for j in page.jobs}
    assert reasons == {
        ids[0]: "finished_at is out of range",
        ids[1]: "priority is not an integer; attempts_started is not an integer",
        ids[2]: "unknown state 'exploded'; options do not validate",
        ids[3]: "missing field state; missing field data",
        ids[4]: "created_at is out of range",
    }
    states = {j.id: j.state for j in page.jobs}
    assert states[ids[2]] is JobState.COMPLETED and states[ids[3]] is JobState.COMPLETED
    single = await queue.get_job(ids[0])
    assert single is not None and single.finished_at is None and single.corrupt is not None
