"""`ForgeWorker`: arq's Worker (CLI, signals, startup/shutdown hooks, health check, cron schedules)
with our claim path: one Lua call claims a batch of jobs atomically, idle workers block on Redis
instead of polling, and every attempt ends in one Lua call that honours retries and retention.

This module wires the worker together and runs its claim loop; an attempt's life in a slot is in
attempts.py, how slots pass to their next jobs in slot_handoff.py, lease renewal in
lease_renewal.py, heartbeat timing in heartbeats.py, and the log lines about jobs in job_logs.py."""

import asyncio
import contextlib
import contextvars
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import arq.constants
import arq.worker
from arq.connections import ArqRedis, RedisSettings
from arq.cron import CronJob
from loguru import logger
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from .arq_calls import INTAKE_QUEUE
from .arq_compat import arq_function
from .arq_functions import handlers_from_functions
from .arq_intake import ArqIntake, start_intake
from .arq_pool import QueueContract
from .attempts import HELD as HELD  # importable from here, as before attempts.py
from .attempts import Attempts
from .cancels import CancelListener
from .claims import Claimer
from .cluster_wait import node_client, wait_on_markers
from .connect import cluster_client_for, redis_client, wait_for_redis
from .cron import add_due_ticks, cron_handler
from .deadlines import Deadlines
from .event_loop import use_uvloop
from .events import EVENT_RESULT_MAX_BYTES
from .heartbeats import Heartbeats
from .keys import QueueKeys, is_cluster, job_key_prefix, queue_key_prefix
from .lease_renewal import LeaseRenewal
from .limits import QueueLimits
from .meta import current_meta
from .metrics import WorkerMetrics
from .outbox import OutcomeWriter, Refill
from .prefetch import Prefetch
from .producer import known_queues
from .runner import ClaimedJob, Handler, reason_of
from .scripts import scripts_for
from .serializer import arq_job_deserializer, arq_job_serializer
from .slot_handoff import SlotHandoff
from .tracing import spans_recorded
from .workers import WorkerRegistration

_ARQ_WORKER = arq.worker.Worker

OUTCOME_LINGER_S = 0.003
"""How long an outcome write that no slot waits for (or that would go out beside another) waits
for more outcomes to share it."""
OUTCOME_WRITES_IN_FLIGHT = 2
"""Outcome writes under way at once (outbox.py)."""


class ForgeWorker(Attempts, SlotHandoff, _ARQ_WORKER):
    # Attempts and SlotHandoff: this class's per-job steps, in modules of their own (mixins, so
    # each step reaches the worker's state as directly as before). arq's Worker stays the base
    # whose signature arq's CLI reads (arq_cli.py).
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
        self._leases = LeaseRenewal(
            self._running, self._settled, self._prefetch, self._cancel, self._release
        )
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
        self._heartbeats = Heartbeats(self.heart_beat)
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
        leases = asyncio.create_task(self._leases.run(self._scripts, self._keys, self.lease_ms))
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
                    if self._heartbeats.first is not None:
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
            await self._heartbeats.stop()  # before the worker leaves the registry
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
        await self._heartbeats.turn()
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
