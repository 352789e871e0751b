"""Reading job records by id: one id, or a page of ids in one pipelined round trip."""

from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from .keys import job_key_prefix, logs_key
from .owners import full_id, validate_owner
from .records import JobRecord, record_from_hash, unreadable_record
from .states import JobState

NOT_A_HASH = "job record is not a Redis hash"


async def find_job(
    redis: Redis, job_id: str, *, prefix: str = "fs", owner: str | None = None
) -> JobRecord | None:
    """Any queue's job by id (ids are unique across queues). With `owner`, `job_id` is that
    owner's local id and only its jobs are found; another owner's job reads as missing."""
    if owner is not None:
        validate_owner(owner)
        if "~" in job_id:
            return None
    key = job_key_prefix(prefix) + full_id(owner, job_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hgetall(key)
        pipe.lrange(logs_key(prefix, full_id(owner, job_id)), 0, -1)
        raw, logs = await pipe.execute(raise_on_error=False)
    if isinstance(raw, ResponseError):
        kind = (await redis.type(key)).decode()
        return unreadable_record(
            full_id(owner, job_id), "", JobState.FAILED, f"{NOT_A_HASH} but a {kind}", owner=owner
        )
    if isinstance(raw, Exception):
        raise raw
    if not raw:
        return None
    record = record_from_hash(raw, owner=owner, listed_id=full_id(owner, job_id))
    if isinstance(logs, list):
        record.logs = [line.decode("utf-8", "replace") for line in logs]
    return record


async def read_page(
    redis: Redis,
    prefix: str,
    queue: str,
    state: JobState,
    ids: Sequence[bytes],
    owner: str | None,
) -> list[JobRecord]:
    """Never raises for one bad record: a key of another type is listed as corrupt, a key gone
    since the ids were read (removed meanwhile) is skipped."""
    if not ids:
        return []
    jp = job_key_prefix(prefix)
    async with redis.pipeline(transaction=False) as pipe:
        for raw_id in ids:
            pipe.hgetall(jp + raw_id.decode())
        replies = await pipe.execute(raise_on_error=False)
    jobs = []
    for raw_id, reply in zip(ids, replies, strict=True):
        job_id = raw_id.decode("utf-8", "replace")
        if isinstance(reply, ResponseError):
            jobs.append(unreadable_record(job_id, queue, state, NOT_A_HASH, owner=owner))
        elif isinstance(reply, Exception):
            raise reply
        elif reply:
            jobs.append(record_from_hash(reply, owner=owner, listed_id=job_id, listed_state=state))
    return jobs
