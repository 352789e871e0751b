"""An attempt's life in one of the worker's slots: its task started (in the job's propagation
context, in a span when tracing is on), its handler run, its outcome decided and handed to the
outbox along with its slot (slot_handoff.py); and the endings forced on it: an operator's cancel,
and a timeout whose cancellation the handler ignores (recorded without it, then abandoned).

A mixin of ForgeWorker rather than an object it owns: starting, running and ending an attempt is
the per-job path, on the worker's own collections, where a helper object would add a lookup per
step."""

import asyncio
import contextvars
from collections.abc import Iterable
from dataclasses import replace
from time import perf_counter
from typing import TYPE_CHECKING, Any

from .actions import CANCELLED
from .deadlines import Deadlines, stuck_at
from .errors import PayloadError
from .job_logs import job_log, log_outcome
from .meta import restored
from .progress import RedisReporter
from .runner import ClaimedJob, failure, failure_or_retry
from .tracing import attempt_span

if TYPE_CHECKING:
    from arq.worker import Worker as _Worker

    from .keys import QueueKeys
    from .metrics import WorkerMetrics
    from .outbox import OutcomeWriter
    from .prefetch import Prefetch
    from .runner import Handler
    from .scripts import Scripts
else:
    _Worker = object

HELD = "its queue is held by a remote rate limit: released to waiting"


def attempt_key(job: ClaimedJob) -> str:
    """One claim call stamps one token on every job it claims; the job id tells them apart."""
    return f"{job.token}/{job.id}"


class Attempts(_Worker):
    if TYPE_CHECKING:
        # The worker's state and steps this part uses (worker.py, slot_handoff.py).
        handlers: dict[str, Handler[Any, Any]]
        _running: dict[str, ClaimedJob]
        _settled: set[str]
        _cancelled: set[str]
        _abandoned: dict[str, asyncio.Task[None]]
        _handed: set[str]
        _holding: set[str]
        _held: dict[str, float]
        _finishing: int
        _prefetch: Prefetch
        _outcomes: OutcomeWriter
        _deadlines: Deadlines
        _grace_s: float
        _started: asyncio.Event
        _stopping: bool
        _traced: bool
        _context: contextvars.Context
        _context_meta: bool
        _scripts: Scripts
        _keys: dict[str, QueueKeys]
        _metrics: WorkerMetrics
        _slot_freed: asyncio.Event

        def _fill_slots(self) -> None: ...
        def _start_buffered(self) -> bool: ...
        def _release(self, jobs: Iterable[ClaimedJob], why: str, level: str = "INFO") -> None: ...

    def _start(self, job: ClaimedJob, held_ms: int = 0) -> None:
        """`held_ms`: how long it waited in the prefetch buffer (its recorded start moves)."""
        key = attempt_key(job)
        self._running[key] = job
        if job.meta or self._traced or self._context_meta:
            attempt = self._attempt(job, key, held_ms)
        else:
            # Nothing to restore, no span to open: no wrapping coroutine (a frame and two
            # context managers per job).
            attempt = self._run_attempt(job, key, held_ms)
        task = self.loop.create_task(attempt, context=self._context.copy())
        self.tasks[key] = task
        if job.options.timeout is not None and self._started.is_set():
            # Claimed while on_startup runs: its clock starts once it may run (_run_attempt).
            self._deadlines.watch(key, task, job.options.timeout / 1000)
        task.add_done_callback(lambda _: self._done(key))

    def _done(self, key: str) -> None:
        self._deadlines.forget(key)
        self.tasks.pop(key, None)
        self._running.pop(key, None)
        self._settled.discard(key)
        self._cancelled.discard(key)
        self._abandoned.pop(key, None)
        if key in self._handed:
            self._handed.discard(key)  # its slot passed to a buffered job or the outcome writer
        else:
            self._fill_slots()
            self._slot_freed.set()

    async def _attempt(self, job: ClaimedJob, key: str, held_ms: int) -> None:
        """An attempt in the job's propagation context, and its span when tracing is on."""
        with restored(job.meta), attempt_span(job):
            await self._run_attempt(job, key, held_ms)

    async def _run_attempt(self, job: ClaimedJob, key: str, held_ms: int) -> None:
        handler = self.handlers[job.queue]
        started = perf_counter()
        try:
            if not self._started.is_set():
                # Claimed while on_startup runs. If it fails, the stop cancels this wait and
                # the job is released below like any other on shutdown.
                await self._started.wait()
                started = perf_counter()
                task = asyncio.current_task()
                if job.options.timeout is not None and task is not None:
                    self._deadlines.watch(key, task, job.options.timeout / 1000)
            if job.defect:
                raise PayloadError(job.defect)
            reporter = RedisReporter(self._scripts, self._keys[job.queue], job.id, job.token)
            outcome = await handler.attempt(job, self.ctx, reporter)
        except PayloadError as exc:
            outcome = failure(job.options, exc)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if key in self._settled:
                return  # recorded already, by the watchdog or shutdown, after it ignored a cancel
            if key in self._cancelled and task is not None:
                task.uncancel()
                outcome = failure(job.options, exc, CANCELLED)
            elif self._deadlines.expired(key) and task is not None and task.uncancel() == 0:
                reason = f"timed out after {job.options.timeout} ms"
                outcome = failure_or_retry(job.options, job.attempt, exc, reason)
            elif task is not None and task.cancelling():
                job_log(job).warning("worker stopping: job released back to waiting")
                self._settled.add(key)
                await self._outcomes.record(job, None)
                return
            else:
                # The handler raised CancelledError itself (a cancelled future it awaited): that
                # is its failure, not a shutdown, so it spends an attempt like any other error.
                outcome = failure_or_retry(job.options, job.attempt, exc)
        except Exception as exc:
            job_log(job).exception("the job runner itself failed")
            outcome = failure(job.options, exc)
        if key in self._settled:
            job_log(job).warning(
                "ended as {} after the worker recorded it: discarded", outcome.kind
            )
            return
        if key in self._cancelled and outcome.kind != "failed":
            # It finished its work despite the cancel (it ignored or swallowed it): still cancelled.
            outcome = failure(job.options, asyncio.CancelledError(), CANCELLED)
        log_outcome(self, self._metrics, job, outcome, (perf_counter() - started) * 1000)
        self._settled.add(key)
        self._handed.add(key)
        self._prefetch.ended()
        if outcome.kind == "limited":
            # The remote side holds the whole queue: its buffered jobs go back to waiting with
            # this outcome's write (which holds the queue for every worker) rather than start.
            self._held[job.queue] = self.loop.time() + outcome.retry_delay_ms / 1000
            self._release(self._prefetch.take_queue(job.queue), HELD)
        if self.allow_pick_jobs and not self._stopping and self._start_buffered():
            # The slot runs a buffered job at once; the write refills the buffer, if it is
            # still wanted that large.
            refill = len(self._prefetch) + self._prefetch.topping < self._prefetch.target()
            self._prefetch.topping += refill
            self._outcomes.submit(job, outcome, frees_slot=refill, held_ms=held_ms, urgent=False)
            return
        # The task ends now; its slot stays held until the write returns with the next job.
        self._holding.add(key)
        self._finishing += 1
        self._outcomes.submit(job, outcome, frees_slot=True, held_ms=held_ms)

    def _cancel(self, job_id: str) -> None:
        """An operator cancelled the job (cancel.lua): cancel whichever attempt of it runs here.
        A buffered one never runs: its release finds the cancel flag and fails it as cancelled
        (finish.lua)."""
        self._release(
            self._prefetch.remove(job_id), "cancelled by an operator before it ran", "WARNING"
        )
        for key, job in list(self._running.items()):
            task = self.tasks.get(key)
            if job.id != job_id or task is None or key in self._settled or key in self._cancelled:
                continue
            job_log(job).warning("cancelled by an operator")
            self._cancelled.add(key)
            task.cancel()

    def _on_stuck(self, key: str) -> None:
        """The handler ignored its timeout's cancellation for a grace period: the attempt is
        recorded without it (failed or retried), its lease is no longer renewed so the record is
        final, and it is cancelled once more; if it still runs a grace later, it is abandoned."""
        job = self._running.get(key)
        task = self.tasks.get(key)
        if job is None or task is None or key in self._settled:
            return  # ended meanwhile, or ending: its own outcome is on its way
        reason = f"timed out after {job.options.timeout} ms; the handler ignored cancellation"
        outcome = failure_or_retry(job.options, job.attempt, TimeoutError(reason), reason)
        outcome = replace(outcome, stacktrace=stuck_at(task))
        ms = (job.options.timeout or 0) + self._grace_s * 1000
        log_outcome(self, self._metrics, job, outcome, ms)
        self._settled.add(key)
        self._outcomes.submit(job, outcome)
        task.cancel()
        self.loop.call_later(self._grace_s, self._abandon, key)

    def _abandon(self, key: str) -> None:
        """Frees the slot of a task that survived a second cancellation. It runs on unobserved
        (nothing can stop a coroutine that refuses to); whatever it returns is discarded."""
        task = self.tasks.get(key)
        if task is None or task.done():
            return
        del self.tasks[key]
        self._abandoned[key] = task
        job = self._running.get(key)
        if job is not None:
            job_log(job).error("the handler ignores cancellation: task abandoned, its slot freed")
        self._fill_slots()
        self._slot_freed.set()
