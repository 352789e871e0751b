"""Waiting for a job to finish without polling its record: the job's state is read once, together
with its queue's last event id (one MULTI, so no event falls between them), then the queue's event
stream is read with XREAD BLOCK from that id until the job's `completed`, `failed` or `removed`
event arrives or the time runs out. Idle waiters cost Redis nothing but a blocked connection.
A long wait also reads the job once per BLOCK_SLICE_MS, so an end the stream no longer carries
(trimmed under load, events turned off meanwhile) still ends it.
With events turned off (EVENTS_MAX_LEN=0) there is nothing to block on, so the wait falls back to
reading the job's state, backing off to one read every POLL_MAX_S."""

import asyncio
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import TypeAdapter
from redis.asyncio import Redis

from .errors import JobFailedError, JobNotFoundError, ResultTooLargeError, WaitTimeoutError
from .keys import QueueKeys
from .owners import local_id
from .reads import find_job
from .records import JobRecord
from .serializer import loads
from .states import JobState

ResultT = TypeVar("ResultT")

FINAL_EVENTS = frozenset({b"completed", b"failed", b"removed"})
BLOCK_SLICE_MS = 5_000
"""Longest single XREAD BLOCK: well under any socket timeout a client might set."""
POLL_MAX_S = 0.5
"""Events off: the longest pause between two reads of the job's state."""


@dataclass(frozen=True, slots=True)
class WaitOutcome:
    finished: bool
    """False when the time ran out first (or the job was removed before finishing)."""
    record: JobRecord | None
    """The job's record after it finished or when the time ran out; None once it is removed
    (retention that removes a job as it finishes, or an operator's remove)."""
    state: str
    """completed, failed, removed, or the state it was in when the time ran out."""
    result: Any = None
    failed_reason: str | None = None
    result_dropped_bytes: int | None = None
    """Completed and removed with a result too large for its event (this many bytes): `result`
    is None because the result is nowhere, not because the handler returned None."""

    def result_or_raise(self, job_id: str) -> Any:
        """`result`, or ResultTooLargeError when it was too large to survive the job's removal."""
        if self.result_dropped_bytes is not None:
            raise ResultTooLargeError(job_id, self.result_dropped_bytes)
        return self.result


def _outcome(record: JobRecord) -> WaitOutcome:
    finished = record.state in (JobState.COMPLETED, JobState.FAILED)
    return WaitOutcome(finished, record, record.state.value, record.result, record.failed_reason)


async def wait_for_job(
    redis: Redis,
    keys: QueueKeys,
    full_id: str,
    timeout_s: float | None,
    *,
    owner: str | None = None,
) -> WaitOutcome | None:
    """None when the job does not exist (for `owner`, one not its own). `full_id` is the Redis
    id; the record comes back as `owner` names it. `timeout_s` None waits for as long as it takes
    (arq's `Job.result()` without a timeout)."""
    name = local_id(owner, full_id) or full_id
    async with redis.pipeline(transaction=not keys.tagged) as pipe:
        pipe.xrevrange(keys.events, count=1)
        pipe.hmget(keys.job(full_id), ["state", "queue"])
        pipe.get(keys.events_maxlen)
        last, fields, cap = await pipe.execute(raise_on_error=False)
    if not isinstance(fields, list) or fields[1] != keys.queue.encode():
        return None  # missing, another queue's, or not a job hash
    state = fields[0]
    if state in (b"completed", b"failed"):
        return await _read(redis, keys, name, owner)
    clock = asyncio.get_running_loop().time
    deadline = None if timeout_s is None else clock() + max(timeout_s, 0)
    if cap == b"0":
        return await _poll(redis, keys, name, owner, deadline)
    cursor: bytes | str = last[0][0] if isinstance(last, list) and last else "0-0"
    target = full_id.encode()
    recheck = clock() + BLOCK_SLICE_MS / 1000
    while True:
        left_ms = BLOCK_SLICE_MS if deadline is None else int((deadline - clock()) * 1000)
        if left_ms <= 0:
            # The one re-read: the job may have finished as the time ran out.
            return await _read(redis, keys, name, owner)
        if clock() >= recheck:
            # The job's end may never come as an event (events turned off since, or the capped
            # stream trimmed it before this read): one read of the job per slice ends the wait.
            recheck = clock() + BLOCK_SLICE_MS / 1000
            found = await _read(redis, keys, name, owner)
            if found.finished or found.record is None:
                return found
        reply = await redis.xread(
            {keys.events: cursor}, count=500, block=min(left_ms, BLOCK_SLICE_MS)
        )
        for _, entries in reply or []:
            for event_id, fields in entries:
                cursor = event_id
                if fields.get(b"j") != target or fields.get(b"e") not in FINAL_EVENTS:
                    continue
                found = await _read(redis, keys, name, owner)
                if found.record is None:
                    return _from_event(fields)
                if found.finished:
                    return found
                # Finished and already back to waiting (an operator's retry): wait on.


async def _poll(
    redis: Redis, keys: QueueKeys, name: str, owner: str | None, deadline: float | None
) -> WaitOutcome:
    """Events are off: read the job until it ends or the time runs out."""
    clock = asyncio.get_running_loop().time
    pause = 0.01
    while True:
        left = POLL_MAX_S if deadline is None else deadline - clock()
        await asyncio.sleep(max(0.0, min(pause, left)))
        found = await _read(redis, keys, name, owner)
        if found.finished or found.record is None or left <= pause:
            return found
        pause = min(pause * 2, POLL_MAX_S)


async def _read(redis: Redis, keys: QueueKeys, name: str, owner: str | None) -> WaitOutcome:
    record = await find_job(redis, name, prefix=keys.prefix, owner=owner, queue=keys.queue)
    if record is None:
        return WaitOutcome(False, None, "removed")
    return _outcome(record)


def _from_event(fields: dict[bytes, bytes]) -> WaitOutcome:
    """The job is gone already (removed as it finished): what its event carried."""
    event = fields[b"e"].decode()
    if event == "removed":
        return WaitOutcome(False, None, "removed")
    reason = fields.get(b"r")
    value = fields.get(b"v")
    dropped = fields.get(b"vx")
    return WaitOutcome(
        True,
        None,
        event,
        result=loads(value) if value is not None else None,
        failed_reason=reason.decode("utf-8", "replace") if reason is not None else None,
        result_dropped_bytes=int(dropped) if dropped is not None else None,
    )


async def result_of(
    redis: Redis,
    keys: QueueKeys,
    full_id: str,
    name: str,
    timeout_s: float,
    result_model: type[ResultT] | None,
    owner: str | None,
) -> ResultT | Any:
    """`Queue.wait`'s typed answer: the result (validated as `result_model` when given), or the
    failure raised as JobFailedError; a timeout raises WaitTimeoutError, a removed job
    JobNotFoundError, one removed as it completed with a result too large for its event
    ResultTooLargeError."""
    outcome = await wait_for_job(redis, keys, full_id, timeout_s, owner=owner)
    if outcome is None or outcome.state == "removed":
        raise JobNotFoundError(name)
    if not outcome.finished:
        raise WaitTimeoutError(name, outcome.state)
    if outcome.state == JobState.FAILED:
        raise JobFailedError(name, outcome.failed_reason or "")
    result = outcome.result_or_raise(name)
    if result_model is None:
        return result
    return TypeAdapter(result_model).validate_python(result)
