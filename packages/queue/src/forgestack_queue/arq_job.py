"""`ForgeJob`: arq's `Job`, reading our job hash instead of arq's keys.

What `ArqRedis.enqueue_job` returns on a ForgeStack pool, so code written against arq's `Job`
(`status()`, `info()`, `result(timeout=)`) keeps working. Meanings follow arq:

- `status()`: waiting -> `queued`; delayed (deferred, or waiting out a retry's backoff) ->
  `deferred`; active -> `in_progress`; completed and failed -> `complete`; gone -> `not_found`.
- `result()`: a completed job's result (validated into the queue's result model when the pool
  knows one); a failed job raises `JobFailedError` with the stored reason (arq re-raises the
  pickled exception; we store JSON, so the reason text is what travels); a job that does not
  exist raises arq's `ResultNotFound`. It waits on the queue's event stream, not by polling, and
  still hands over the result of a job removed as it completed (`keep_result=0`), unless that
  result was over EVENTS_RESULT_MAX_BYTES: then `ResultTooLargeError` says so.
- `abort()`: our cancel (waiting, delayed or running), answered as arq answers it: True once the
  job ended cancelled.
"""

from datetime import UTC, datetime
from typing import Any

from arq.jobs import Job, JobDef, JobResult, JobStatus, ResultNotFound
from pydantic import BaseModel
from redis.asyncio import Redis

from .actions import CANCELLED
from .arq_wire import call_of
from .errors import InvalidJobStateError, JobNotFoundError
from .keys import QueueKeys, job_key_prefix
from .producer import Queue
from .records import JobRecord, record_from_hash
from .states import JobState

_STATUS = {
    JobState.WAITING: JobStatus.queued,
    JobState.DELAYED: JobStatus.deferred,
    JobState.ACTIVE: JobStatus.in_progress,
    JobState.COMPLETED: JobStatus.complete,
    JobState.FAILED: JobStatus.complete,
}


class JobFailedError(RuntimeError):
    """`ForgeJob.result()` of a job that failed for good: carries the stored reason."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(reason)
        self.job_id = job_id
        self.reason = reason


class ForgeJob(Job):
    __slots__ = ("_prefix", "_result_model")

    def __init__(
        self,
        job_id: str,
        redis: Redis,
        *,
        queue: str,
        prefix: str,
        result_model: type[BaseModel] | None = None,
    ) -> None:
        super().__init__(job_id, redis, _queue_name=queue)
        self._prefix = prefix
        self._result_model = result_model

    @property
    def _key(self) -> str:
        return job_key_prefix(self._prefix) + self.job_id

    async def _record(self) -> JobRecord | None:
        raw: dict[bytes, bytes] = await self._redis.hgetall(self._key)  # type: ignore[misc]
        if not raw:
            return None
        record = record_from_hash(raw, listed_id=self.job_id)
        return record if record.queue == self._queue_name else None

    async def status(self) -> JobStatus:
        raw = await self._redis.hmget(self._key, ["state", "queue"])  # type: ignore[misc]
        state, queue = raw
        if state is None or queue is None or queue.decode() != self._queue_name:
            return JobStatus.not_found
        return _STATUS[JobState(state.decode())]

    async def result(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 (arq's signature)
        *,
        poll_delay: float = 0.5,
        pole_delay: float | None = None,
    ) -> Any:
        """Waits for the job to finish (up to `timeout` seconds, then `asyncio.TimeoutError`).
        It blocks on the queue's event stream (forgestack_queue.waiting), so `poll_delay` and
        `pole_delay` are accepted for arq's signature and have nothing to tune."""
        # Imported here, as by Queue.wait: a worker's handlers enqueue, seldom wait.
        from .waiting import wait_for_job

        keys = QueueKeys(self._prefix, self._queue_name)
        outcome = await wait_for_job(self._redis, keys, self.job_id, timeout)
        if outcome is None or outcome.state == "removed":
            raise ResultNotFound(f"job {self.job_id!r} is not in queue {self._queue_name!r}")
        if not outcome.finished:
            raise TimeoutError()
        if outcome.state == JobState.FAILED:
            raise JobFailedError(self.job_id, outcome.failed_reason or "")
        return self._typed(outcome.result_or_raise(self.job_id))

    def _typed(self, value: Any) -> Any:
        if self._result_model is None or value is None:
            return value
        return self._result_model.model_validate(value)

    async def info(self) -> JobDef | None:
        record = await self._record()
        return None if record is None else _job_def(record, self._typed)

    async def result_info(self) -> JobResult | None:
        record = await self._record()
        if record is None or record.state not in (JobState.COMPLETED, JobState.FAILED):
            return None
        info = _job_def(record, self._typed)
        assert isinstance(info, JobResult)
        return info

    async def abort(self, *, timeout: float | None = None, poll_delay: float = 0.5) -> bool:  # noqa: ASYNC109
        """arq's abort on our cancel: a waiting or delayed job fails as `cancelled` at once, a
        running one when its worker cancels the handler (about a second). Then, as arq, waits for
        the outcome up to `timeout` (None: as long as it takes; past it `TimeoutError`): True
        when the job ended cancelled, False when it completed first or does not exist; a job
        that had already failed otherwise raises its failure, as `result()` does. `poll_delay`
        is arq's; the wait blocks on the queue's event stream."""
        queue = Queue(self._redis, self._queue_name, prefix=self._prefix)
        try:
            await queue.cancel(self.job_id)
        except JobNotFoundError:
            return False
        except InvalidJobStateError:
            pass  # finished already: its outcome answers
        try:
            await self.result(timeout=timeout)
        except JobFailedError as exc:
            if exc.reason == CANCELLED:
                return True
            raise
        except ResultNotFound:
            return False
        return False

    def __repr__(self) -> str:
        return f"<forgestack job {self.job_id} on {self._queue_name}>"


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


_EPOCH = datetime.fromtimestamp(0, tz=UTC)


def _job_def(record: JobRecord, typed: Any) -> JobDef:
    """args/kwargs as arq would show them: an arq-style call's own, else the payload as one arg."""
    args, kwargs = call_of(record.data)
    base: dict[str, Any] = {
        "function": record.name,
        "args": args,
        "kwargs": kwargs,
        "job_try": record.attempts_made or None,
        "enqueue_time": record.created_at or _EPOCH,
        "score": None,
        "job_id": record.id,
    }
    if record.state is JobState.WAITING:
        base["score"] = _ms(record.created_at)
    elif record.state is JobState.DELAYED:
        base["score"] = _ms(record.delay_until)
    if record.state not in (JobState.COMPLETED, JobState.FAILED):
        return JobDef(**base)
    success = record.state is JobState.COMPLETED
    return JobResult(
        **base,
        success=success,
        result=typed(record.result) if success else record.failed_reason,
        start_time=record.processed_at or _EPOCH,
        finish_time=record.finished_at or _EPOCH,
        queue_name=record.queue,
    )
