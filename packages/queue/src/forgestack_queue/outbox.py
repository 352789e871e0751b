"""Group commit of attempt outcomes: attempts that end while a write is in flight share the next
write, so one Lua call records many jobs. The writer is its own task, so a job task cancelled by
shutdown still has its outcome written."""

import asyncio
from typing import Any

from loguru import logger
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .runner import ClaimedJob, Outcome
from .scripts import Scripts
from .serializer import dumps

Entry = tuple[ClaimedJob, Outcome | None, asyncio.Future[None]]


def _row(job: ClaimedJob, outcome: Outcome | None) -> list[Any]:
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
    ]


class OutcomeWriter:
    def __init__(
        self, scripts: Scripts, job_prefix: str, queue_prefix: str, *, give_up_after_s: float
    ) -> None:
        self._scripts = scripts
        self._prefixes = [job_prefix, queue_prefix]
        self._give_up_after_s = give_up_after_s
        self._outbox: list[Entry] = []
        self._writer: asyncio.Task[None] | None = None

    def submit(self, job: ClaimedJob, outcome: Outcome | None) -> "asyncio.Future[None]":
        """Queues the outcome for the next write; the future is done once it is stored (or could
        not be: the lease then recovers the job). For callers that cannot wait, like the
        watchdog recording an attempt whose handler ignores cancellation."""
        done = asyncio.get_running_loop().create_future()
        self._outbox.append((job, outcome, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_all())
        return done

    async def record(self, job: ClaimedJob, outcome: Outcome | None) -> None:
        """Returns once the outcome is stored (or could not be: the lease then recovers the job)."""
        done = self.submit(job, outcome)
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            # Shutdown cancelled the job task: the outcome is written all the same, then the
            # task ends normally (its work is done either way).
            await done

    async def drain(self) -> None:
        if self._writer is not None:
            await self._writer

    async def _write_all(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                kept = await self._write([_row(job, outcome) for job, outcome, _ in batch])
            except Exception:
                # Never leave a job task waiting: it would hold its slot and block shutdown.
                logger.exception(
                    "{} outcomes not recorded: those jobs stay active until their lease expires",
                    len(batch),
                )
                kept = [1] * len(batch)
            for (job, _, done), ok in zip(batch, kept, strict=True):
                if not ok:
                    logger.bind(job_id=job.id, queue=job.queue, attempt=job.attempt).warning(
                        "lease lost before the attempt ended: its outcome was discarded"
                    )
                if not done.done():
                    done.set_result(None)

    async def _write(self, rows: list[list[Any]]) -> list[int]:
        """Rides out a Redis outage for as long as the lease lasts; the write is token-fenced and
        idempotent, so retrying is safe, and past the lease the job is recovered anyway."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._give_up_after_s
        pause = 0.05
        args: list[Any] = [*self._prefixes, dumps(rows)]
        while True:
            try:
                return list(await self._scripts.finish(args=args))
            except (RedisConnectionError, RedisTimeoutError):
                if loop.time() + pause > give_up:
                    raise
                logger.warning("redis unreachable while recording outcomes; retry in {} s", pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
