"""Turns `async def handle_x(job: Job[XData]) -> XResult` into one attempt with a typed outcome:
payload validated first, result stored as JSON, every exception classified (retry or fail)."""

import asyncio
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import PayloadError, UnrecoverableError
from .job import Job
from .options import JobOptions, retention_limits
from .serializer import dumps

DataT = TypeVar("DataT", bound=BaseModel)
ResultT = TypeVar("ResultT")

MAX_STACKTRACE = 8_000
"""Characters kept of a traceback: enough to find the line, bounded so a loop cannot bloat Redis."""


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job as the claim script hands it to a worker, before its payload is trusted."""

    id: str
    queue: str
    name: str
    data: bytes
    options: JobOptions
    attempt: int
    created_at_ms: int
    token: str
    defect: str | None = None
    """Why the stored record cannot run (corrupt options); such a job fails without running."""


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Literal["completed", "failed", "retry"]
    value: bytes = b""
    """Result JSON when completed, else the reason."""
    stacktrace: str = ""
    keep_count: int = -1
    keep_age_s: int = -1
    retry_delay_ms: int = 0


@lru_cache(maxsize=1024)
def options_from_json(raw: bytes) -> JobOptions:
    """Jobs of one queue share a handful of option sets; parsing each once keeps claims cheap."""
    try:
        return JobOptions.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise PayloadError(f"job options do not validate: {exc}") from exc


@dataclass(frozen=True)
class Handler(Generic[DataT, ResultT]):
    """A job function bound to its queue and models; the worker serves the queues of its handlers."""

    queue: str
    fn: Callable[[Job[DataT]], Awaitable[ResultT]]
    data_model: type[DataT]
    names: frozenset[str] = field(default_factory=frozenset)
    """Job names this handler accepts besides the queue's own name."""

    def accepts(self, name: str) -> bool:
        return name == self.queue or name in self.names

    def decode(self, raw: bytes) -> DataT:
        try:
            return self.data_model.model_validate_json(raw)
        except ValidationError as exc:
            raise PayloadError(
                f"payload does not validate as {self.data_model.__name__}: {exc}"
            ) from exc

    async def attempt(self, claimed: ClaimedJob, ctx: dict[str, Any]) -> Outcome:
        """Runs one attempt. CancelledError (worker shutdown) propagates: the caller releases the job."""
        opts = claimed.options
        try:
            if not self.accepts(claimed.name):
                raise PayloadError(
                    f"no handler for job name {claimed.name!r} on queue {self.queue!r}"
                )
            job = Job(
                id=claimed.id,
                queue=claimed.queue,
                name=claimed.name,
                data=self.decode(claimed.data),
                attempt=claimed.attempt,
                options=opts,
                ctx=ctx,
            )
            if opts.timeout is None:
                result = await self.fn(job)
            else:
                async with asyncio.timeout(opts.timeout / 1000):
                    result = await self.fn(job)
            payload = (
                result.model_dump_json().encode()
                if isinstance(result, BaseModel)
                else dumps(result)
            )
        except (PayloadError, UnrecoverableError) as exc:
            return _failed(opts, exc)
        except TimeoutError as exc:
            return _failed_or_retry(
                opts, claimed.attempt, exc, f"timed out after {opts.timeout} ms"
            )
        except Exception as exc:
            return _failed_or_retry(opts, claimed.attempt, exc)
        count, age = retention_limits(opts.remove_on_complete)
        return Outcome("completed", payload, keep_count=count, keep_age_s=age)


def reason_of(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _stack(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))[-MAX_STACKTRACE:]


def _failed(opts: JobOptions, exc: BaseException, reason: str | None = None) -> Outcome:
    count, age = retention_limits(opts.remove_on_fail)
    text = reason or reason_of(exc)
    return Outcome("failed", text.encode(), _stack(exc), keep_count=count, keep_age_s=age)


def _failed_or_retry(
    opts: JobOptions, attempt: int, exc: BaseException, reason: str | None = None
) -> Outcome:
    if attempt >= opts.attempts:
        return _failed(opts, exc, reason)
    delay = opts.backoff.delay_for(attempt) if opts.backoff else 0
    text = reason or reason_of(exc)
    return Outcome("retry", text.encode(), _stack(exc), retry_delay_ms=delay)
