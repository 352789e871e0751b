"""Group commit of attempt outcomes: attempts that end while a write is in flight share the next
write, so one Lua call records many jobs. The writer is its own task, so a job task cancelled by
shutdown still has its outcome written.

Finish and fetch next: with a `Refill`, the write that records outcomes whose slots it frees also
claims the jobs that take those slots (finish_claim.lua) and hands them over, so a busy worker's
slot turns over in one round trip, not two. An attempt that ends does not wait for its write:
its slot stays held (the worker counts it) until the write returns with the slot's next job.

Two writes in flight (`in_flight=2`, the worker's): outcomes that end while a write is under way
need not wait for its reply. A second write goes out beside it once it carries enough rows to be
worth a call (`linger_batch`) or its oldest row has waited `linger_s`, so Redis and the worker's
own Python overlap instead of taking turns, and calls stay batched. Rows of one write never
depend on another's: each is one attempt, fenced by its own claim token.

On a Redis Cluster a write is one call per queue (each declares the queue's active set, so it
runs on that queue's shard); finish and fetch next then applies to a batch of one queue."""

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any

from loguru import logger
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .events import EVENT_RESULT_MAX_BYTES
from .keys import QueueKeys, queue_key_prefix
from .runner import ClaimedJob, Outcome
from .scripts import Scripts
from .serializer import dumps

if TYPE_CHECKING:
    from loguru import Logger

Entry = tuple[ClaimedJob, Outcome | None, "asyncio.Future[None] | None", bool, int]
"""(job, outcome or None for released, done once stored (when someone waits), whether it holds a
slot that the write frees, ms the job waited in the worker's prefetch buffer before it ran)"""


@dataclass(frozen=True, slots=True)
class Refill:
    """The worker's side of finish and fetch next."""

    wanted: Callable[[int], int]
    """How many jobs to claim with a write whose outcomes free that many slots (0: none)."""
    finish_and_claim: Callable[..., Awaitable[tuple[list[int], list[ClaimedJob]]]]
    """finish.lua's call with these arguments, claiming up to that many jobs: its reply, the jobs
    (Claimer.finish_and_claim; on a cluster also given the batch's one queue)."""
    written: Callable[[list[ClaimedJob], list[ClaimedJob], int, int], None]
    """After every write, stored or not: the jobs whose outcomes it carried, the jobs claimed
    with it (to start, or to release when the worker is stopping), how many slots its outcomes
    held, now free for them, and what `wanted` said for it (two writes may be under way: each
    settles its own reservation)."""


RECORDED, ALREADY_ENDED, GONE = 1, 2, 3
"""finish.lua's reply per row (0: the attempt no longer holds the job)."""


def _own_earlier_write(code: int, outcome: Outcome | None, retried: bool) -> bool:
    """Whether a row that was not recorded now was recorded by this attempt's own earlier try,
    which only a retried write can have had: the attempt had already ended as the row says, or,
    for an outcome that removes the job, the job is gone. A first try never counts: a manual
    retry restarts attempt numbers, so the history cannot tell a stalled worker's attempt from a
    later attempt of the same number (nor a removed job whose removal it was)."""
    if not retried:
        return False
    removes = outcome is not None and outcome.keep_count == 0
    return code == ALREADY_ENDED or (code == GONE and removes)


def _log(job: ClaimedJob) -> "Logger":
    return logger.bind(job_id=job.id, queue=job.queue, attempt=job.attempt)


def _row(job: ClaimedJob, outcome: Outcome | None, held_ms: int) -> list[Any]:
    if outcome is None:  # released: the worker is stopping and the attempt did not happen
        return [job.queue, job.id, job.token, "release", "", "", -1, -1, 0]
    return [
        job.queue,
        job.id,
        job.token,
        outcome.kind,
        outcome.value.decode("utf-8", "backslashreplace"),
        outcome.stacktrace,
        outcome.keep_count,
        outcome.keep_age_s,
        outcome.retry_delay_ms,
        held_ms,
    ]


class OutcomeWriter:
    def __init__(
        self,
        scripts: Scripts,
        job_prefix: str,
        queue_prefix: str,
        *,
        give_up_after_s: float,
        refill: Refill | None = None,
        event_result_max_bytes: int = EVENT_RESULT_MAX_BYTES,
        cluster_prefix: str | None = None,
        linger_s: float = 0.0,
        linger_batch: int = 1,
        in_flight: int = 1,
    ) -> None:
        """`cluster_prefix`: the key prefix when the client is a Redis Cluster (tagged layout).
        `linger_s`, `linger_batch`: a write that nobody waits for (every outcome in it was
        submitted with `urgent=False`), or one that would go out beside a write under way, waits
        up to `linger_s` for `linger_batch` outcomes, so attempts that no longer wait for their
        write still share one. `in_flight`: how many writes may be under way at once."""
        self._linger_s = linger_s
        self._linger_batch = linger_batch
        self._in_flight = max(1, in_flight)
        self._urgent = False
        """Whether an outcome that someone waits for (a slot, a caller) is in the outbox."""
        self._nudge = asyncio.Event()
        """Wakes a lingering writer: an urgent or a full outbox, or a write returned."""
        self._writing = 0
        """Writes under way (sent, reply not yet handled)."""
        self._scripts = scripts
        self._event_result_max_bytes = event_result_max_bytes
        self._cluster_prefix = cluster_prefix
        self._refill = refill
        self._prefixes = [job_prefix, queue_prefix]
        self._give_up_after_s = give_up_after_s
        self._outbox: list[Entry] = []
        self._writers: set[asyncio.Task[None]] = set()
        self.last_write_s = 0.0
        """How long the oldest outcome of the latest write waited, from its submit to the write's
        return: a slot without a buffered job waits that long (the worker sizes its prefetch
        buffer by it)."""
        self._oldest = 0.0
        """When the oldest outcome in the outbox was submitted."""
        self._context = contextvars.copy_context()
        """The writer's own (its creator's, not the attempt's that happens to start it): its log
        lines carry no other job's request id."""

    def submit(
        self,
        job: ClaimedJob,
        outcome: Outcome | None,
        *,
        frees_slot: bool = False,
        done: "asyncio.Future[None] | None" = None,
        held_ms: int = 0,
        urgent: bool = True,
    ) -> None:
        """Queues the outcome for the next write, for callers that do not wait for it: an ended
        attempt (`frees_slot`: its slot is free once the write returns, which may claim the
        slot's next job), the watchdog recording an attempt whose handler ignores cancellation.
        `done`, if given, is set once the outcome is stored (or could not be: the lease then
        recovers the job). `held_ms`: how long the job waited in the prefetch buffer before it
        ran (its recorded start moves by that much, to when it ran)."""
        if not self._outbox:
            self._oldest = perf_counter()
        self._outbox.append((job, outcome, done, frees_slot, held_ms))
        if urgent:
            self._urgent = True
            self._nudge.set()
        elif len(self._outbox) >= self._linger_batch:
            self._nudge.set()
        writers = len(self._writers)
        if not writers or (writers == self._writing and writers < self._in_flight):
            # None yet, or every one is waiting for its reply: one more gathers this outcome.
            task = asyncio.get_running_loop().create_task(
                self._write_all(), context=self._context.copy()
            )
            self._writers.add(task)

    async def record(self, job: ClaimedJob, outcome: Outcome | None) -> None:
        """Returns once the outcome is stored (or could not be: the lease then recovers the job)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.submit(job, outcome, done=done)
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            # Shutdown cancelled the job task: the outcome is written all the same, then the
            # task ends normally (its work is done either way).
            await done

    async def drain(self) -> None:
        """Returns once every outcome submitted so far, and any submitted meanwhile, is written."""
        while self._writers:
            await asyncio.wait(list(self._writers))

    def _ready(self) -> bool:
        """Whether a writer should send the outbox now rather than linger for more outcomes."""
        if not self._linger_s or len(self._outbox) >= self._linger_batch:
            return True
        # Beside a write under way, even a slot's outcome waits a little: its reply may come
        # first, and a write of one row per ended attempt would cost Redis a call per job.
        return self._urgent and not self._writing

    async def _linger(self) -> None:
        """Until the outbox is ready to go (`_ready`), for at most `linger_s`."""
        deadline = asyncio.get_running_loop().time() + self._linger_s
        while not self._ready():
            self._nudge.clear()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._nudge.wait()
            except TimeoutError:
                return

    async def _write_all(self) -> None:
        try:
            await self._write_while_any()
        finally:
            # Leaves the set in the same step it finds the outbox empty: an outcome submitted
            # after that starts a writer of its own.
            task = asyncio.current_task()
            if task is not None:
                self._writers.discard(task)

    async def _write_while_any(self) -> None:
        while self._outbox:
            await self._linger()
            if not self._outbox:
                return  # another writer took it meanwhile
            self._urgent = False
            batch, self._outbox, oldest = self._outbox, [], self._oldest
            freed = sum(1 for entry in batch if entry[3])
            want = self._refill.wanted(freed) if self._refill is not None and freed else 0
            fetched: list[ClaimedJob] = []
            retried = False
            self._writing += 1
            try:
                codes, fetched, retried = await self._write(
                    [_row(job, outcome, held) for job, outcome, _, _, held in batch], want
                )
                self.last_write_s = perf_counter() - oldest
            except Exception:
                # Never leave a caller waiting or a slot held: either would block shutdown.
                logger.exception(
                    "{} outcomes not recorded: those jobs stay active until their lease expires",
                    len(batch),
                )
                codes = [RECORDED] * len(batch)
            finally:
                self._writing -= 1
                self._nudge.set()
            if self._refill is not None:
                self._refill.written([entry[0] for entry in batch], fetched, freed, want)
            for (job, outcome, done, _, _), code in zip(batch, codes, strict=True):
                # Almost every row was recorded as sent: only the others log (a logger bound
                # per row was a good part of the loop).
                if code == RECORDED:
                    pass
                elif _own_earlier_write(code, outcome, retried):
                    _log(job).debug("outcome already recorded by the write whose reply was lost")
                else:
                    _log(job).warning(
                        "lease lost before the attempt ended: its outcome was discarded"
                    )
                if done is not None and not done.done():
                    done.set_result(None)

    async def _write(
        self, rows: list[list[Any]], want: int
    ) -> tuple[list[int], list[ClaimedJob], bool]:
        if self._cluster_prefix is None:
            return await self._write_one(rows, want, None)
        by_queue: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            by_queue.setdefault(row[0], []).append(i)
        codes = [0] * len(rows)
        fetched: list[ClaimedJob] = []
        retried = False
        for queue, at in by_queue.items():
            part, jobs, again = await self._write_one(
                [rows[i] for i in at], want if len(by_queue) == 1 else 0, queue
            )
            for i, code in zip(at, part, strict=True):
                codes[i] = code
            fetched += jobs
            retried = retried or again
        return codes, fetched, retried

    async def _write_one(
        self, rows: list[list[Any]], want: int, queue: str | None
    ) -> tuple[list[int], list[ClaimedJob], bool]:
        """Rides out a Redis outage for as long as the lease lasts; the write is token-fenced and
        idempotent, so retrying is safe, and past the lease the job is recovered anyway. A claim
        whose reply was lost is released by the claimer before its next claim. Also says whether
        the call was retried: an earlier try may have run, and its rows then read as ended."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._give_up_after_s
        pause = 0.05
        args: list[Any] = [*self._prefixes, dumps(rows), self._event_result_max_bytes]
        keys: list[str] = []
        if queue is not None and self._cluster_prefix is not None:
            k = QueueKeys(self._cluster_prefix, queue, tagged=True)
            args = [k.job_prefix, queue_key_prefix(k.prefix, tagged=True), *args[2:]]
            keys = [k.active]
        retried = False
        while True:
            try:
                if want and self._refill is not None:
                    if queue is None:
                        return (*await self._refill.finish_and_claim(args, want), retried)
                    return (*await self._refill.finish_and_claim(args, want, queue), retried)
                return list(await self._scripts.finish(keys=keys, args=args)), [], retried
            except (RedisConnectionError, RedisTimeoutError):
                retried = True
                if loop.time() + pause > give_up:
                    raise
                logger.warning("redis unreachable while recording outcomes; retry in {} s", pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
