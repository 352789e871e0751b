"""Reading job records by id: one id, or a page of ids in one pipelined round trip.

On a single Redis a job record's key holds no queue, so an id is found in one read. On a Redis
Cluster records live in their queue's slot: an id alone is looked up in every known queue in one
pipelined round (redis-py's cluster pipeline sends each node its share), and an id that more than
one queue holds raises AmbiguousJobIdError rather than picking one."""

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from .errors import AmbiguousJobIdError
from .keys import QueueKeys, is_cluster, queues_key
from .owners import full_id, validate_owner
from .records import JobRecord, record_from_hash, unreadable_record
from .states import JobState

NOT_A_HASH = "job record is not a Redis hash"


async def find_job(
    redis: Redis,
    job_id: str,
    *,
    prefix: str = "fs",
    owner: str | None = None,
    queue: str | None = None,
    queues: Sequence[str] = (),
) -> JobRecord | None:
    """A job by id. With `owner`, `job_id` is that owner's local id and only its jobs are found;
    another owner's job reads as missing. `queue`: only that queue's job. Without it, any queue's:
    on a cluster, those of `prefix`'s set of queue names plus `queues` (names the caller knows of,
    such as its catalog's), in one round; AmbiguousJobIdError when two of them hold the id."""
    if owner is not None:
        validate_owner(owner)
        if "~" in job_id:
            return None
    full = full_id(owner, job_id)
    if not is_cluster(redis):
        record = await _read_one(redis, QueueKeys(prefix, queue or ""), full, owner)
        if record is None or (queue is not None and record.queue != queue):
            return None
        return record
    if queue is not None:
        return await _read_one(redis, QueueKeys(prefix, queue, tagged=True), full, owner)
    names: set[bytes] = await redis.smembers(queues_key(prefix))  # type: ignore[misc]
    candidates = sorted({n.decode() for n in names} | set(queues))
    keys = [QueueKeys(prefix, name, tagged=True) for name in candidates]
    async with redis.pipeline(transaction=False) as pipe:
        for k in keys:
            pipe.hgetall(k.job(full))
            pipe.lrange(k.logs(full), 0, -1)
        replies = await pipe.execute(raise_on_error=False)
    found = [
        record
        for i, k in enumerate(keys)
        if (record := await _record(redis, k, full, owner, replies[2 * i], replies[2 * i + 1]))
    ]
    if len(found) > 1:
        raise AmbiguousJobIdError(job_id, [r.queue for r in found])
    return found[0] if found else None


async def _read_one(
    redis: Redis, keys: QueueKeys, full: str, owner: str | None
) -> JobRecord | None:
    # MULTI keeps the record and its logs one snapshot; a cluster has no MULTI across calls,
    # but both keys share the queue's slot and node, and the pipeline sends them together.
    async with redis.pipeline(transaction=not keys.tagged) as pipe:
        pipe.hgetall(keys.job(full))
        pipe.lrange(keys.logs(full), 0, -1)
        raw, logs = await pipe.execute(raise_on_error=False)
    return await _record(redis, keys, full, owner, raw, logs)


async def _record(
    redis: Redis, keys: QueueKeys, full: str, owner: str | None, raw: Any, logs: Any
) -> JobRecord | None:
    if isinstance(raw, ResponseError):
        kind = (await redis.type(keys.job(full))).decode()
        queue = keys.queue if keys.tagged else ""
        return unreadable_record(
            full, queue, JobState.FAILED, f"{NOT_A_HASH} but a {kind}", owner=owner
        )
    if isinstance(raw, Exception):
        raise raw
    if not raw:
        return None
    record = record_from_hash(raw, owner=owner, listed_id=full)
    if isinstance(logs, list):
        record.logs = [line.decode("utf-8", "replace") for line in logs]
    return record


async def read_page(
    redis: Redis,
    keys: QueueKeys,
    state: JobState,
    ids: Sequence[bytes],
    owner: str | None,
) -> list[JobRecord]:
    """Never raises for one bad record: a key of another type is listed as corrupt, a key gone
    since the ids were read (removed meanwhile) is skipped."""
    if not ids:
        return []
    jp = keys.job_prefix
    async with redis.pipeline(transaction=False) as pipe:
        for raw_id in ids:
            pipe.hgetall(jp + raw_id.decode())
        replies = await pipe.execute(raise_on_error=False)
    jobs = []
    for raw_id, reply in zip(ids, replies, strict=True):
        job_id = raw_id.decode("utf-8", "replace")
        if isinstance(reply, ResponseError):
            jobs.append(unreadable_record(job_id, keys.queue, state, NOT_A_HASH, owner=owner))
        elif isinstance(reply, Exception):
            raise reply
        elif reply:
            jobs.append(record_from_hash(reply, owner=owner, listed_id=job_id, listed_state=state))
    return jobs
