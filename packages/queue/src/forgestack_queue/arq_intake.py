"""Serves calls a plain arq pool enqueued (`arq.create_pool(...)`, then `enqueue_job(...)`).

Such a pool writes arq's own keys: `<queue_name>` (a sorted set of ids scored by run time, default
`arq:queue`) and `arq:job:<id>`. Every `poll_delay` (arq's setting) the worker's intake:

1. takes the ids no ForgeStack worker has taken yet (arq_take.lua: atomic, so a call is taken
   once) and adds each to the queue its function names, through the same atomic add as our pool
   (payload validated, the same job id, delay = arq's score, `_expires` = the time to live arq gave
   its key, `_job_try`), unowned (the operator's view: no organisation sent it): arq_calls.py;
2. mirrors our jobs into arq's keys (arq_sync.lua): running -> `arq:in-progress:<id>`, waiting or
   delayed -> arq's score; completed or failed for good -> `arq:result:<id>` in arq's format (kept
   for `keep_result`) and the id leaves arq's queue, as arq's worker does it: arq_mirror.py.

So a plain pool's `Job.status()`, `info()` and `result()` answer with arq's meanings, at most one
`poll_delay` after our job moves, and at once when an attempt ends in this worker (`ended`). A call that cannot run (invalid payload, unknown function,
refused pickle, expired before it was taken) is never dropped: it becomes a failed job with the
reason, in its queue's failed store or, naming no queue this worker knows, in the internal
`arq-intake` queue; arq's result key carries the failure too.

Our taken set's score says where a call is: negative while it is being added (minus the take
time), then arq's enqueue time of that call, which tells it from a later call reusing its id.
An empty arq queue costs one script call per pass.
"""

import asyncio
import contextlib
from typing import TYPE_CHECKING

from arq.constants import (
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from loguru import logger
from pydantic_core import PydanticSerializationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from .arq_calls import INTAKE_QUEUE, IntakeSettings, TakenCall, plan_call
from .arq_mirror import ArqMirror, Row
from .arq_wire import Answer
from .claims import Claimer
from .errors import JobIdInUseError, PayloadError, PayloadTooLargeError
from .keys import job_key_prefix as our_job_key_prefix
from .keys import queue_key_prefix
from .outbox import OutcomeWriter
from .producer import Queue
from .runner import ClaimedJob, failure
from .scripts import _source, scripts_for
from .serializer import arq_job_deserializer, arq_job_serializer
from .states import JobState

if TYPE_CHECKING:
    from .worker import ForgeWorker

TAKE_BATCH = 500
"""Calls taken per pass; a full batch starts the next pass at once."""
MIRROR_WINDOW = 500
"""Taken calls mirrored per pass (a window rotating over all of them)."""
STOP_WAIT_S = 5.0


class ArqIntake:
    def __init__(self, redis: Redis, settings: IntakeSettings) -> None:
        self.redis = redis
        self.s = settings
        self.taken_key = f"{settings.prefix}:arq-taken:{settings.arq_queue}"
        self.mirror = ArqMirror(redis, settings)
        self._take = redis.register_script(_source("arq_take"))
        self._sync = redis.register_script(_source("arq_sync"))
        self._queues: dict[str, Queue] = {}
        scripts = scripts_for(redis)
        self._claimer = Claimer(
            scripts,
            settings.prefix,
            [INTAKE_QUEUE],
            worker_id=settings.worker_id,
            lease_ms=settings.lease_ms,
        )
        self._outcomes = OutcomeWriter(
            scripts,
            our_job_key_prefix(settings.prefix),
            queue_key_prefix(settings.prefix),
            give_up_after_s=settings.lease_ms / 1000,
        )
        self._window_start = 0
        self._stopping = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """One pass before the worker claims (so a burst worker sees arq's calls), then one every
        `interval_s`; refused calls a stopped worker left unfailed are failed now."""
        try:
            await self.pass_once()
            await self._fail_refused()
        except RedisError as exc:
            logger.warning("arq intake: first pass failed ({})", exc)
        except Exception:
            # arq's queue is a side door: a failing intake must not stop our own queues.
            logger.exception("arq intake: first pass failed")
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Lets a running pass finish, then mirrors once more: what ended last is answered."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), STOP_WAIT_S)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.pass_once(take=False)
        except RedisError as exc:
            logger.warning("arq intake: last pass failed ({})", exc)
        except Exception:
            logger.exception("arq intake: last pass failed")

    def ended(self, job: ClaimedJob) -> None:
        """An attempt ended in this worker: a call of arq's queue gets its answer (or its new
        state) in arq's keys now rather than at the next pass."""
        if job.options.arq is not None and job.options.arq.queue_name == self.s.arq_queue:
            self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            more = False
            try:
                more = await self.pass_once()
            except RedisError as exc:
                logger.warning("arq intake: pass failed ({})", exc)
            except Exception:
                logger.exception("arq intake: pass failed")
            if not more:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.s.interval_s)
            self._wake.clear()

    async def pass_once(self, *, take: bool = True) -> bool:
        """Takes new calls and mirrors taken ones; True when a full batch was taken."""
        now, count, fresh, window = await self._take(
            keys=[self.s.arq_queue, self.taken_key],
            args=[job_key_prefix, TAKE_BATCH if take else 0, self._window_start, MIRROR_WINDOW],
        )
        now = int(now)
        self._window_start += MIRROR_WINDOW
        if self._window_start >= int(count):
            self._window_start = 0
        rows: list[Row] = []
        refused_here = False
        for arq_id, score, body, pttl in fresh:
            call = plan_call(self.s, arq_id.decode(), float(score), body, int(pttl), now)
            rows.append(await self._add(call, now))
            refused_here = refused_here or call.queue == INTAKE_QUEUE
        rows += await self.mirror.rows(window, now)
        if rows:
            await self._sync(
                keys=[self.s.arq_queue, self.taken_key],
                args=[
                    job_key_prefix,
                    in_progress_key_prefix,
                    result_key_prefix,
                    retry_key_prefix,
                    *(value for row in rows for value in row),
                ],
            )
        if refused_here:
            await self._fail_refused()
        return len(fresh) == TAKE_BATCH

    def queue(self, name: str) -> Queue:
        if name not in self._queues:
            self._queues[name] = Queue(self.redis, name, prefix=self.s.prefix)
        return self._queues[name]

    async def _add(self, call: TakenCall, now: int, *, again: bool = True) -> Row:
        """Our atomic add under the call's id; the sync row that marks it added, or answers it."""
        try:
            try:
                added = await self.queue(call.queue).add(call.data, call.options, name=call.name)
            except (PayloadTooLargeError, PydanticSerializationError) as exc:
                call = call.refused(f"the arguments cannot be stored: {exc}", call.data)
                added = await self.queue(call.queue).add(call.data, call.options, name=call.name)
        except JobIdInUseError:
            return await self._existing(call, now, again=again)
        if not added.created:
            return await self._existing(call, now, again=again)
        log = logger.bind(job_id=added.id, queue=call.queue, attempt=0)
        if call.arq.defect:
            log.warning("arq call refused, failing it: {}", call.arq.defect)
        else:
            log.debug("taken from arq queue {}", self.s.arq_queue)
        return ["mark", call.arq_id, call.pending, call.arq.enqueued_at, ""]

    async def _existing(self, call: TakenCall, now: int, *, again: bool) -> Row:
        """The id is a job already: this very call (its taker died before marking it), an earlier
        call whose id arq freed (its result expired), or another job entirely."""
        job_id = call.options.job_id or call.arq_id
        record = await self.mirror.record(job_id)
        if record is None and again:
            return await self._add(call, now, again=False)  # removed meanwhile
        arq = self.mirror.arq_of(record, call.arq_id)
        if record is not None and arq is not None:
            if arq.enqueued_at == call.arq.enqueued_at:
                return ["mark", call.arq_id, call.pending, call.arq.enqueued_at, ""]
            if again and record.state in (JobState.COMPLETED, JobState.FAILED):
                await self.queue(record.queue).remove(job_id)
                return await self._add(call, now, again=False)
        reason = f"job id {job_id!r} is in use by another ForgeStack job"
        logger.bind(job_id=job_id, queue=call.queue, attempt=0).warning(
            "arq call refused: {}", reason
        )
        answer = Answer(
            arq_id=call.arq_id,
            function=call.name,
            data=call.data,
            job_try=call.arq.job_try,
            enqueued_at=call.arq.enqueued_at or now,
            success=False,
            result=reason,
            started_at=now,
            finished_at=now,
            queue_name=self.s.arq_queue,
        )
        return self.mirror.answer_row(answer, call.pending, call.queue, pickled=call.arq.pickle)

    async def _fail_refused(self) -> None:
        """Refused calls in the `arq-intake` queue fail through the same claim and finish as any
        job, so they are counted, kept and shown like any failure."""
        while True:
            claimed, _, _ = await self._claimer.claim(TAKE_BATCH)
            for job in claimed:
                reason = job.defect or "refused by the arq intake"
                self._outcomes.submit(job, failure(job.options, PayloadError(reason)))
            await self._outcomes.drain()
            if len(claimed) < TAKE_BATCH:
                return


async def start_intake(worker: "ForgeWorker") -> ArqIntake:
    """The worker's intake, from its `WorkerSettings` (arq's `queue_name`, `poll_delay`,
    `keep_result`, serializers; ours: `arq_intake_pickle`), started."""
    settings = IntakeSettings(
        arq_queue=worker.queue_name,
        prefix=worker.queue_prefix,
        handlers=worker.handlers,
        contracts=worker.queue_contracts,
        deserializer=worker.job_deserializer or arq_job_deserializer,
        serializer=worker.job_serializer or arq_job_serializer,
        allow_pickle=worker.arq_intake_pickle,
        keep_result_s=worker.keep_result_s,
        keep_result_forever=worker.keep_result_forever,
        interval_s=worker.poll_delay_s,
        lease_ms=worker.lease_ms,
        worker_id=worker.worker_id,
    )
    intake = ArqIntake(worker.pool, settings)
    await intake.start()
    return intake
