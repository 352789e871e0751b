"""`ForgeWorker`: arq's Worker (CLI, signals, startup/shutdown hooks, health check, cron schedules)
with our claim path: one Lua call claims a batch of jobs atomically, idle workers block on Redis
instead of polling, and every attempt ends in one Lua call that honours retries and retention."""

import asyncio
import contextlib
import contextvars
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any, cast

import arq.constants
import arq.worker
from arq.connections import ArqRedis, RedisSettings
from arq.cron import CronJob
from loguru import logger
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from .actions import CANCELLED
from .arq_calls import INTAKE_QUEUE
from .arq_compat import arq_function
from .arq_functions import handlers_from_functions
from .arq_intake import ArqIntake, start_intake
from .arq_pool import QueueContract
from .cancels import CancelListener
from .claims import Claimer
from .cluster_wait import node_client, wait_on_markers
from .connect import cluster_client_for, redis_client, wait_for_redis
from .cron import add_due_ticks, cron_handler
from .deadlines import Deadlines, stuck_at
from .errors import PayloadError
from .event_loop import use_uvloop
from .events import EVENT_RESULT_MAX_BYTES
from .keys import QueueKeys, is_cluster, job_key_prefix, queue_key_prefix
from .limits import QueueLimits
from .meta import current_meta, restored
from .metrics import WorkerMetrics, first_wait_s
from .outbox import OutcomeWriter, Refill
from .prefetch import Prefetch
from .producer import known_queues
from .progress import RedisReporter
from .runner import (
    ClaimedJob,
    Handler,
    Outcome,
    failure,
    failure_or_retry,
    reason_of,
)
from .scripts import scripts_for
from .serializer import arq_job_deserializer, arq_job_serializer
from .tracing import attempt_span, spans_recorded
from .workers import WorkerRegistration

if TYPE_CHECKING:
    from loguru import Logger

_ARQ_WORKER = arq.worker.Worker

HELD = "its queue is held by a remote rate limit: released to waiting"

OUTCOME_LINGER_S = 0.003
"""How long an outcome write that no slot waits for (or that would go out beside another) waits
for more outcomes to share it."""
OUTCOME_WRITES_IN_FLIGHT = 2
"""Outcome writes under way at once (outbox.py)."""


class ForgeWorker(_ARQ_WORKER):
    def __init__(
        self,
        functions: Sequence[Any] = (),
        *,
        handlers: Sequence[Handler[Any, Any]] = (),
        queue_contracts: Mapping[Any, QueueContract] | None = None,
        queue_prefix: str = "fs",
        lease_ms: int = 30_000,
        block_ms: int = 1_000,
        claim_batch: int = 50,
        burst_horizon_ms: int = 5_000,
        cancel_grace_ms: int = 1_000,
        limits: Mapping[str, QueueLimits] | None = None,
        events_max_len: int | None = None,
        events_result_max_bytes: int = EVENT_RESULT_MAX_BYTES,
        heartbeat_ms: int = 5_000,
        arq_intake: bool = True,
        arq_intake_pickle: bool = False,
        redis_cluster: bool = False,
        prefetch: int | None = None,
        uvloop: bool = True,
        **kwargs: Any,
    ) -> None:
        """`uvloop`: run on a new uvloop loop when no loop is running yet, as under arq's CLI
        (event_loop.py); False keeps asyncio's own."""
        if uvloop:
            use_uvloop()
        cron_jobs: list[CronJob] = list(kwargs.get("cron_jobs") or [])
        # arq `func(...)`s are handlers too (typed when `queue_contracts` names their queue).
        max_tries = kwargs.get("max_tries") or 5
        all_handlers = [
            *handlers,
            *handlers_from_functions(
                functions,
                queue_contracts or {},
                default_max_tries=max_tries,
                queue_prefix=queue_prefix,
            ),
        ]
        if cron_jobs:
            all_handlers.append(cron_handler(cron_jobs))
        self.handlers: dict[str, Handler[Any, Any]] = {h.queue: h for h in all_handlers}
        if len(self.handlers) != len(all_handlers):
            raise ValueError("two handlers registered for one queue")
        if isinstance(kwargs.get("redis_pool"), RedisCluster):
            # arq reads its queue name from its own pool type otherwise.
            kwargs.setdefault("queue_name", arq.constants.default_queue_name)
        kwargs.setdefault("job_serializer", arq_job_serializer)
        kwargs.setdefault("job_deserializer", arq_job_deserializer)
        super().__init__([arq_function(h) for h in all_handlers], **kwargs)
        self.queue_prefix = queue_prefix
        self.lease_ms = lease_ms
        self._lease_warned: set[str] = set()
        """Running attempts already logged as having lost their lease (_lease_lost)."""
        self._prefetch = Prefetch(self.max_jobs if prefetch is None else prefetch)
        """Jobs claimed ahead for slots about to free (prefetch.py); `prefetch` bounds it (None:
        the concurrency, 0: none)."""
        # The loop beats the worker registry; waking at least twice per heartbeat keeps each
        # beat well inside the record's TTL of two heartbeats.
        self.block_s = min(block_ms, heartbeat_ms / 2) / 1000
        self.claim_batch = claim_batch
        self.burst_horizon_ms = burst_horizon_ms
        self.limits = dict(limits or {})
        self.queue_contracts = {str(q): c for q, c in (queue_contracts or {}).items()}
        # Calls a plain arq pool puts in arq's own queue are served too (arq_intake.py).
        self.arq_intake = arq_intake
        self.arq_intake_pickle = arq_intake_pickle
        self.redis_cluster = redis_cluster
        """`redis_settings` name one node of a Redis Cluster (REDIS_CLUSTER)."""
        self._intake: ArqIntake | None = None
        self.worker_id = uuid.uuid4().hex[:12]
        self.events_max_len = events_max_len
        """The cap of each served queue's event stream, written at start-up (None: leave it)."""
        self.events_result_max_bytes = events_result_max_bytes
        self.heartbeat_ms = heartbeat_ms
        self._queues = sorted(self.handlers)
        self._keys = {q: QueueKeys(queue_prefix, q) for q in self._queues}
        self._markers = [self._keys[q].marker for q in self._queues]
        # Attempts are keyed by claim token and job id, never by job id alone: one worker may hold
        # two attempts of a job (its lease lapsed in an event-loop stall and it claimed it again).
        self._running: dict[str, ClaimedJob] = {}
        self._settled: set[str] = set()
        """Attempts whose outcome is handed to the outbox: their leases are no longer renewed, and
        any later outcome of theirs is discarded."""
        self._cancelled: set[str] = set()
        """Attempts an operator cancelled: they end failed as `cancelled`, whatever they do."""
        self._abandoned: dict[str, asyncio.Task[None]] = {}
        """Tasks that ignored cancellation twice: no longer holding a slot, kept referenced."""
        self._grace_s = cancel_grace_ms / 1000
        self._deadlines = Deadlines(self._grace_s, self._on_stuck)
        self._slot_freed = asyncio.Event()
        self._stopping = False
        """Set once the claim loop ends: jobs claimed with an outcome from then on are released."""
        self._traced = True
        """Whether attempts open spans (a tracer provider is installed); decided as main starts."""
        self._context = contextvars.copy_context()
        """What every attempt starts from (the worker's own context, taken as main starts): the
        outcome writer starts attempts too, and its task was created inside another attempt."""
        self._context_meta = bool(self._context.run(current_meta))
        """Whether that context carries meta: an attempt of a job without any then still restores
        (to none), so it does not inherit the worker's."""
        self._main_started = False
        self._beaten = False
        self._first_beat: asyncio.Task[None] | None = None
        """The first heartbeat, run beside the first claim, until the next turn awaits it."""
        self._written = 0
        """Outcome writes so far: one that lands during a claim may have queued a retry the claim
        missed."""
        self._finishing = 0
        """Slots held by ended attempts whose outcomes are on their way to Redis: the write that
        stores them claims their next jobs (or frees them)."""
        self._handed: set[str] = set()
        """Attempts that handed their slot on, to a buffered job or to the outcome writer (the
        loop is not woken when their task ends: the slot is not free)."""
        self._holding: set[str] = set()
        """Ended attempts whose slot waits for their outcome write (the buffer was empty)."""
        self._held: dict[str, float] = {}
        """Queues a handler's RateLimited holds, until when (loop time): no job of theirs starts
        here meanwhile, buffered or claimed by a write already on its way."""
        self._cluster = False
        """Whether the pool is a Redis Cluster client (decided as main starts)."""
        self._metrics = WorkerMetrics(queue_prefix)
        self._started = asyncio.Event()
        """Set once on_startup has returned: attempts claimed before then wait for it."""
        self._startup_error: BaseException | None = None
        self._startup_task: asyncio.Task[None] | None = None
        self._main_task: asyncio.Task[Any] | None = None

    async def main(self) -> None:
        if self._pool is None:
            # A fleet restarts in any order: wait for Redis rather than exit (arq would, after
            # a few retries).
            if self.redis_cluster:
                self._pool = cast(
                    ArqRedis, cluster_client_for(self.redis_settings or RedisSettings())
                )
            else:
                self._pool = redis_client(self.redis_settings or RedisSettings())
                self._pool.default_queue_name = self.queue_name
            await wait_for_redis(self._pool, "worker")
        self._context = contextvars.copy_context()
        self._context_meta = bool(self._context.run(current_meta))
        self._main_started = True
        self._scripts = scripts_for(self.pool)
        self._cluster = is_cluster(self.pool)
        if self._cluster:
            # The tagged layout: every key of a queue in its own slot (keys.py).
            self._keys = {q: QueueKeys(self.queue_prefix, q, True) for q in self._queues}
            self._markers = [self._keys[q].marker for q in self._queues]
            if self.arq_intake:
                logger.info(
                    "Redis Cluster: arq's own queue ({}) is not served; enqueue through "
                    "ForgeStack's Queue or API",
                    self.queue_name,
                )
                self.arq_intake = False
        self._claimer = Claimer(
            self._scripts,
            self.queue_prefix,
            self._queues,
            worker_id=self.worker_id,
            lease_ms=self.lease_ms,
            limits=self.limits,
            tagged=self._cluster,
        )
        self._outcomes = OutcomeWriter(
            self._scripts,
            job_key_prefix(self.queue_prefix),
            queue_key_prefix(self.queue_prefix),
            give_up_after_s=self.lease_ms / 1000,
            refill=Refill(self._refill_wanted, self._claimer.finish_and_claim, self._after_write),
            event_result_max_bytes=self.events_result_max_bytes,
            cluster_prefix=self.queue_prefix if self._cluster else None,
            # Slots that run buffered jobs do not wait for their outcomes' write: it may wait
            # a little for more of them, as slots waiting for theirs made it do before.
            linger_s=OUTCOME_LINGER_S,
            linger_batch=max(1, self.max_jobs // 2),
            # A second write goes out beside the one under way instead of waiting for its reply:
            # the worker's Python and Redis then work at once rather than in turns. Not with one
            # slot (a serial queue): each write claims, and the second's reply may come back
            # first, which would start its job ahead of the one claimed before it.
            in_flight=OUTCOME_WRITES_IN_FLIGHT if self.max_jobs > 1 else 1,
        )
        self.ctx["redis"] = self.pool
        self._registration = WorkerRegistration(
            self.pool,
            self.queue_prefix,
            self.worker_id,
            queues=self._queues,
            concurrency=self.max_jobs,
            heartbeat_ms=self.heartbeat_ms,
        )
        await self._set_events_max_len()
        logger.info(
            "worker {} serving queues {} (concurrency {})",
            self.worker_id,
            ", ".join(self._queues),
            self.max_jobs,
        )
        await self._warn_unserved_queues()
        # Decided once tracing is set up (at import, or again as on_startup returns): reading the
        # provider looks up the environment each time.
        self._traced = spans_recorded()
        # on_startup runs beside the first claims instead of before them (clients, a database
        # check: hundreds of ms a start); what is claimed meanwhile waits for it in its slot.
        # It begins once the first claim has returned (_begin_startup): an on_startup that
        # imports on a thread would otherwise hold the GIL while that claim's replies wait.
        if not self.on_startup:
            self._started.set()
        self._main_task = asyncio.current_task()
        # A cluster client has no pub/sub of its own; a cluster relays PUBLISH to every node.
        listen_on = node_client(cast(RedisCluster, self.pool)) if self._cluster else self.pool
        cancels = CancelListener(listen_on, self.queue_prefix, self.worker_id, self._cancel)
        await cancels.subscribe()
        listener = asyncio.create_task(cancels.run())
        leases = asyncio.create_task(self._extend_leases())
        watchdog = asyncio.create_task(self._deadlines.run())
        metrics = asyncio.create_task(self._metrics.run(self.pool))
        self._intake = await start_intake(self) if self.arq_intake else None
        pause = 0.0
        try:
            while True:
                try:
                    idle = await self._poll_iteration_forge()
                except RedisError as exc:
                    self._begin_startup()
                    # A Redis restart or failover: keep the process, wait, and claim again.
                    pause = min(max(pause * 2, 0.1), 5.0)
                    logger.warning("redis error ({}); retrying in {:.1f} s", reason_of(exc), pause)
                    await asyncio.sleep(pause)
                    continue
                pause = 0.0
                if (
                    self.burst
                    and idle
                    and not self.tasks
                    and not self._finishing
                    and not self._prefetch
                ):
                    if self._first_beat is not None:
                        # Not done with yet: the next turn awaits it (a run_at_startup cron
                        # tick it adds is due now; its error is the loop's), then claims again.
                        continue
                    if self._started.is_set():
                        return
                    self._begin_startup()
                    await self._started.wait()  # a burst worker runs its on_startup to the end
        except asyncio.CancelledError:
            if self._startup_error is not None:
                raise self._startup_error from None
            raise
        finally:
            self._stopping = True
            if self._startup_task is not None:
                self._startup_task.cancel()  # a no-op once it has returned
                await asyncio.wait([self._startup_task])
            listener.cancel()
            leases.cancel()
            watchdog.cancel()
            metrics.cancel()
            if self._first_beat is not None:
                # Done before the worker leaves the registry: a late first beat would list it.
                self._first_beat.cancel()
                await asyncio.wait([self._first_beat])
                if not self._first_beat.cancelled():
                    self._first_beat.exception()  # retrieved: the stop matters now, not it
            self._release_buffered()
            await self._outcomes.drain()
            if self._intake is not None:
                await self._intake.stop()
            await self._metrics.stop(self.pool)
            with contextlib.suppress(RedisError):
                await self._claimer.release_lost()
            with contextlib.suppress(RedisError):
                await self._registration.leave()
            if listen_on is not self.pool:
                await listen_on.aclose()

    def _begin_startup(self) -> None:
        if self._startup_task is None:
            self._startup_task = asyncio.ensure_future(self._startup())

    async def _startup(self) -> None:
        """on_startup; if it raises, the claim loop stops and main raises its error (what was
        claimed meanwhile is released on the way out, not spent)."""
        try:
            if self.on_startup:
                await self.on_startup(self.ctx)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._startup_error = exc
            if self._main_task is not None:
                self._main_task.cancel()
            return
        self._traced = spans_recorded()
        self._started.set()

    async def _set_events_max_len(self) -> None:
        if self.events_max_len is None:
            return
        async with self.pool.pipeline(transaction=False) as pipe:
            for keys in self._keys.values():
                pipe.set(keys.events_maxlen, self.events_max_len)
            await pipe.execute()

    async def _warn_unserved_queues(self) -> None:
        queues = await known_queues(self.pool, prefix=self.queue_prefix)
        unserved = sorted(set(queues) - set(self._queues) - {INTAKE_QUEUE})
        if unserved:
            logger.warning(
                "queues with jobs but no handler in this worker: {}", ", ".join(unserved)
            )

    async def _poll_iteration_forge(self) -> bool:
        """One turn of the loop; True when there was nothing to run."""
        await self._beat()
        if not self.allow_pick_jobs:
            self._release_buffered()
        self._release_expired()
        free = max(0, self.max_jobs - len(self.tasks) - self._finishing)
        # Only a worker whose slots are all busy buffers: the claim fills free slots first.
        room = self._prefetch.room() if self.allow_pick_jobs else 0
        if not self.allow_pick_jobs or free + room <= 0:
            expiring = self._prefetch.expiring_in()
            # Awake when the oldest buffered job's shelf life ends, to release it.
            wait = self.block_s if expiring is None else min(self.block_s, expiring + 0.001)
            await self._wait_for_slot(wait)
            return False
        written_before = self._written
        want = min(free + room, self.claim_batch)
        claimed, next_due, now = await self._claim(want)
        for job in claimed:
            self._buffer(job)
        self._fill_slots()  # older buffered jobs first, then these; the rest stay buffered
        if len(claimed) == want or self._written != written_before or (claimed and self.burst):
            # More may be runnable; or an attempt that ended during the claim queued a retry
            # the claim missed.
            return False
        # The claim took less than it asked: nothing else is runnable until a marker says so,
        # so block now rather than spend a second claim finding nothing.
        due_in_s = None if next_due < 0 else max(0.001, (next_due - now) / 1000)
        if self.burst:
            if self.tasks or self._finishing:
                # A running job may still be retried: look again once one ends.
                await self._wait_for_slot(self.block_s if due_in_s is None else due_in_s)
                return False
            if due_in_s is None or due_in_s * 1000 > self.burst_horizon_ms:
                return True
            await asyncio.sleep(due_in_s)
            return False
        timeout = self.block_s if due_in_s is None else min(self.block_s, due_in_s)
        if self._cluster:
            await wait_on_markers(cast(RedisCluster, self.pool), self._markers, timeout)
        else:
            await self.pool.bzpopmin(self._markers, timeout)
        return True

    async def _wait_for_slot(self, seconds: float) -> None:
        self._slot_freed.clear()
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
        # arrives as the event fires, and the worker would then ignore SIGTERM.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._slot_freed.wait()

    async def _claim(self, want: int) -> tuple[list[ClaimedJob], int, int]:
        """Shielded: if shutdown cancels the loop mid-claim, what the script claimed is released
        at once instead of sitting active until the lease expires."""
        call = asyncio.ensure_future(self._claimer.claim(want))
        try:
            reply = await asyncio.shield(call)
            self._begin_startup()
            return reply
        except asyncio.CancelledError:
            # The loop is stopping (SIGTERM cancels the attempts, then the loop): say so before
            # this waits, or freed slots start buffered jobs and writes claim new ones meanwhile.
            self._stopping = True
            with contextlib.suppress(Exception):
                claimed, _, _ = await call
                for job in claimed:
                    await self._outcomes.record(job, None)
            raise

    def _refill_wanted(self, freed: int) -> int:
        """Jobs to claim with outcomes that free `freed` places (slots, or buffer places their
        attempts emptied): one each while the worker claims, plus the buffer's room (it grows
        with the rate of ended attempts). Only those places: the loop's own claims fill the
        others, so the two never overbook."""
        if self._stopping or not self.allow_pick_jobs:
            return 0
        # Each part bounded by a claim batch: slots that end together would otherwise take the
        # whole batch, and the buffer would only grow through extra claims of the loop's.
        extra = min(self._prefetch.room(), self.claim_batch)
        self._prefetch.topping += extra
        return min(freed, self.claim_batch) + extra

    def _after_write(
        self, ended: list[ClaimedJob], jobs: list[ClaimedJob], freed: int, wanted: int
    ) -> None:
        """A write returned: its ended attempts' slots go to the jobs claimed with it. A worker
        that began stopping meanwhile releases those jobs instead (attempt not spent). `wanted`:
        what _refill_wanted said for this write; beyond its freed places, buffer places it
        reserved (another write may be under way with its own)."""
        self._written += 1
        self._prefetch.wrote(self._outcomes.last_write_s)
        held = 0
        for job in ended:
            if self._intake is not None:
                self._intake.ended(job)  # a plain arq pool's call is answered at once
            if self._holding:
                key = _key(job)
                if key in self._holding:
                    self._holding.discard(key)
                    held += 1
        # The others were buffer places: their attempts took a buffered job as they ended.
        self._finishing -= held
        extra = wanted - min(freed, self.claim_batch) if wanted else 0
        self._prefetch.topping -= freed - held + extra
        if self._stopping or not self.allow_pick_jobs:
            for job in jobs:
                self._outcomes.submit(job, None)
            self._release_buffered()
            jobs = []
        for job in jobs:
            self._buffer(job)
        self._fill_slots()  # behind the jobs buffered before them: claims keep their order
        if len(jobs) < freed or not freed:
            self._slot_freed.set()

    def _buffer(self, job: ClaimedJob) -> None:
        """Buffers a claimed job, or releases it (attempt not spent) while its queue is held:
        the hold reached Redis after the claim that took it."""
        until = self._held.get(job.queue)
        if until is not None:
            if self.loop.time() < until:
                self._release([job], HELD)
                return
            del self._held[job.queue]
        self._prefetch.put(job)

    def _fill_slots(self) -> None:
        """Free slots take buffered jobs, oldest first: the buffer only holds jobs while all are
        busy. So do slots still waiting for their outcome write (the buffer was empty as their
        attempt ended): their write's jobs then refill the buffer instead."""
        if self._stopping or not self.allow_pick_jobs:
            return
        while self._prefetch and self.max_jobs - len(self.tasks) - self._finishing > 0:
            self._start_buffered()
        while self._prefetch and self._holding:
            self._holding.pop()
            self._finishing -= 1
            self._prefetch.topping += 1
            self._start_buffered()

    def _start_buffered(self) -> bool:
        """Starts the oldest buffered job (its recorded start moves to now); False when none."""
        taken = self._prefetch.take()
        if taken is None:
            return False
        self._start(*taken)
        return True

    def _release(self, jobs: Iterable[ClaimedJob], why: str, level: str = "INFO") -> None:
        """Claimed jobs that will not run here go back to waiting, attempt not spent (finish.lua's
        release; a job an operator cancelled meanwhile ends cancelled instead)."""
        for job in jobs:
            _log(job).log(level, why)
            self._outcomes.submit(job, None)

    def _release_buffered(self) -> None:
        """Stopping or pausing: the whole buffer."""
        self._release(
            self._prefetch.take_all(),
            "worker stopping or paused: buffered job released back to waiting",
        )

    def _release_expired(self) -> None:
        """Buffered jobs past their shelf life, for any worker to take (prefetch.SHELF_LIFE_S):
        the slots they waited for stayed busy."""
        self._release(
            self._prefetch.expired(),
            "buffered past its shelf life: released back to waiting",
            "DEBUG",
        )

    def _start(self, job: ClaimedJob, held_ms: int = 0) -> None:
        """`held_ms`: how long it waited in the prefetch buffer (its recorded start moves)."""
        key = _key(job)
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
                _log(job).warning("worker stopping: job released back to waiting")
                self._settled.add(key)
                await self._outcomes.record(job, None)
                return
            else:
                # The handler raised CancelledError itself (a cancelled future it awaited): that
                # is its failure, not a shutdown, so it spends an attempt like any other error.
                outcome = failure_or_retry(job.options, job.attempt, exc)
        except Exception as exc:
            _log(job).exception("the job runner itself failed")
            outcome = failure(job.options, exc)
        if key in self._settled:
            _log(job).warning("ended as {} after the worker recorded it: discarded", outcome.kind)
            return
        if key in self._cancelled and outcome.kind != "failed":
            # It finished its work despite the cancel (it ignored or swallowed it): still cancelled.
            outcome = failure(job.options, asyncio.CancelledError(), CANCELLED)
        self._log_outcome(job, outcome, (perf_counter() - started) * 1000)
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
            _log(job).warning("cancelled by an operator")
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
        self._log_outcome(job, outcome, ms)
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
            _log(job).error("the handler ignores cancellation: task abandoned, its slot freed")
        self._fill_slots()
        self._slot_freed.set()

    async def close(self) -> None:
        """arq's close waits for every job task, so one handler that ignores cancellation would
        hold shutdown for ever: attempts still running a grace after their cancellation are
        released (not spent, as on any shutdown) and abandoned."""
        self.allow_pick_jobs = False
        self._stopping = True
        if self.tasks:
            for task in self.tasks.values():
                if not task.cancelling():
                    task.cancel()
            _, pending = await asyncio.wait(list(self.tasks.values()), timeout=self._grace_s)
            for key, task in list(self.tasks.items()):
                if task not in pending:
                    continue
                job = self._running.get(key)
                if job is not None and key not in self._settled:
                    self._settled.add(key)
                    self._outcomes.submit(job, None)  # released, as on any shutdown
                self._abandon(key)
        if self._main_started:
            self._release_buffered()
            await self._outcomes.drain()
        if self._cluster and self._pool is not None:
            # arq's close passes close_connection_pool, which a cluster client does not take.
            await asyncio.gather(*self.tasks.values())
            with contextlib.suppress(RedisError):
                await self.pool.delete(self.health_check_key)
            if self.on_shutdown:
                await self.on_shutdown(self.ctx)
            await self.pool.aclose()
            self._pool = None
            return
        await super().close()

    def _log_outcome(self, job: ClaimedJob, outcome: Outcome, ms: float) -> None:
        self._metrics.outcome(job.queue, outcome.kind, ms / 1000, first_wait_s(job, ms))
        if outcome.kind == "completed":
            self.jobs_complete += 1
            # The job's fields as keyword arguments (loguru puts them in `extra`, as bind does):
            # unlike a bound logger, nothing is built per job while DEBUG is off.
            logger.debug(
                "completed in {:.1f} ms", ms, job_id=job.id, queue=job.queue, attempt=job.attempt
            )
            return
        log = _log(job)
        reason = outcome.value.decode("utf-8", "backslashreplace")
        if outcome.kind == "limited":
            log.warning(
                "rate limited by the remote side; queue held for {} ms", outcome.retry_delay_ms
            )
        elif outcome.kind == "retry":
            self.jobs_retried += 1
            log.warning(
                "attempt failed in {:.1f} ms, retry in {} ms: {}",
                ms,
                outcome.retry_delay_ms,
                reason,
            )
        else:
            self.jobs_failed += 1
            log.error("failed in {:.1f} ms: {}", ms, reason)

    async def _extend_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            by_queue: dict[str, list[str]] = defaultdict(list)
            for key, job in list(self._running.items()):
                if key not in self._settled:
                    by_queue[job.queue] += (job.id, job.token)
            for job in self._prefetch:  # claimed, not yet running: held like running ones
                by_queue[job.queue] += (job.id, job.token)
            for queue, pairs in by_queue.items():
                try:
                    _, cancelled, lost = await self._scripts.extend(
                        keys=[self._keys[queue].active],
                        args=[self._keys[queue].job_prefix, self.lease_ms, *pairs],
                    )
                except Exception:  # a missed renewal is retried next round
                    logger.exception("lease renewal failed for queue {}", queue)
                    continue
                for job_id in cancelled:  # a cancel message this worker missed
                    self._cancel(job_id.decode())
                self._lease_lost(
                    queue,
                    {(lost[i].decode(), lost[i + 1].decode()) for i in range(0, len(lost), 2)},
                )

    def _lease_lost(self, queue: str, held: set[tuple[str, str]]) -> None:
        """Attempts of `queue` (id, token) whose lease lapsed here (a stall longer than the lease)
        and whose jobs were recovered: another worker may run them now. A buffered one must not
        start here too; a running one goes on, and its outcome is discarded by the token check. By
        token, not id: this worker's own fresh claim of such a job still holds it."""
        if not held:
            return
        self._release(
            self._prefetch.remove_lost(queue, held),
            "lease lost while buffered (the job was recovered): not started here",
            "WARNING",
        )
        self._lease_warned &= self._running.keys()
        for key, job in self._running.items():
            if key in self._lease_warned or key in self._settled:
                continue  # warned already, or ended (and written) while the renewal was out
            if job.queue == queue and (job.id, job.token) in held:
                self._lease_warned.add(key)
                _log(job).warning("lease lost while running: its outcome will be discarded")

    async def _beat(self) -> None:
        """The first heartbeat (health key, registration, cron ticks: round trips and a few ms of
        schedule arithmetic) runs as a task beside the first claim, which goes out first; every
        later one in turn. The next turn awaits the first (its error surfaces here, for the loop)
        and beats again unless the first was still under way."""
        if not self._beaten:
            self._beaten = True
            self._first_beat = asyncio.get_running_loop().create_task(self._beat_behind_claim())
            return
        if self._first_beat is not None:
            first, self._first_beat = self._first_beat, None
            pending = not first.done()
            await first
            if pending:
                return  # it has just beaten for this turn
        await self.heart_beat()

    async def _beat_behind_claim(self) -> None:
        """The first beat, one loop step late: the claim's task, made after this one in the same
        turn, then sends its script call before the beat sends anything."""
        await asyncio.sleep(0)
        await self.heart_beat()

    async def heart_beat(self) -> None:
        await self.record_health()
        await self._registration.beat(
            len(self.tasks), ((job.queue, job.id) for job in self._running.values())
        )
        await self.run_cron(datetime.now(tz=self.timezone), max(self.block_s, 0.5))

    async def run_cron(self, n: datetime, delay: float, num_windows: int = 2) -> None:
        """arq's schedule arithmetic, but ticks go through our queue with an idempotent id."""
        await add_due_ticks(
            self.pool, self.queue_prefix, self.cron_jobs, n, n.timestamp() + delay * num_windows
        )


def _key(job: ClaimedJob) -> str:
    """One claim call stamps one token on every job it claims; the job id tells them apart."""
    return f"{job.token}/{job.id}"


def _log(job: ClaimedJob) -> "Logger":
    return logger.bind(job_id=job.id, queue=job.queue, attempt=job.attempt)
