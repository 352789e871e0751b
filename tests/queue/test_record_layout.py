"""Issue 14 point 12: a job's hash holds only fields that differ from the readers' defaults, since
each field costs ~70 bytes of Redis memory once the payload makes the hash a hashtable."""

from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState

from tests.queue.probe import ProbeData


async def test_a_plain_waiting_job_stores_five_fields(queue: Queue) -> None:
    added = await queue.add(ProbeData(tag="x" * 200))
    fields = await queue.redis.hkeys(queue.keys.job(added.id))
    assert sorted(fields) == [b"created_at", b"data", b"opts", b"queue", b"state"]
    job = await queue.get_job(added.id)
    assert job is not None and job.corrupt is None
    assert (job.id, job.name, job.priority, job.attempts_made) == (added.id, queue.name, 0, 0)


async def test_fields_that_differ_from_the_defaults_are_stored_and_read_back(
    queue: Queue,
) -> None:
    added = await queue.add(ProbeData(tag="x"), JobOptions(priority=3, attempts=4), name="other")
    fields = set(await queue.redis.hkeys(queue.keys.job(added.id)))
    assert {b"name", b"priority"} <= fields and b"attempts" not in fields
    job = await queue.get_job(added.id)
    assert job is not None and (job.name, job.priority, job.state) == (
        "other",
        3,
        JobState.WAITING,
    )
    assert job.options.attempts == 4
