"""Turns `async def handle_x(job: Job[XData]) -> XResult` into one attempt with a typed outcome:
payload validated first, result stored as JSON, every exception classified (retry or fail)."""

import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Generic, Literal, TypeVar

from arq.worker import Retry
from pydantic import BaseModel, ValidationError

from .errors import PayloadError, RateLimited, UnrecoverableError
from .job import Job, attempt_job
from .meta import meta_from_json
from .options import JobOptions, retention_limits
from .progress import RecordingReporter, Reporter
from .serializer import dumps

DataT = TypeVar("DataT", bound=BaseModel)
ResultT = TypeVar("ResultT")

MAX_STACKTRACE = 8_000
"""Characters kept of a traceback: enough to find the line, bounded so a loop cannot bloat Redis."""


@dataclass(slots=True)
class ClaimedJob:
    """A job as the claim script hands it to a worker, before its payload is trusted. Never
    changed once built; not frozen only because a frozen dataclass's __init__ sets each field
    through object.__setattr__, several times the cost of building it, once per claimed job."""

    id: str
    queue: str
    name: str
    data: bytes
    options: JobOptions
    attempt: int
    created_at_ms: int
    token: str
    defect: str | None = None
    """Why the stored record cannot run (corrupt options, a refused arq call); such a job fails
    without running."""
    meta: dict[str, str] = field(default_factory=dict)
    """Propagation context of the code that added it (request id, trace parent): `meta.py`."""

    @property
    def created_at(self) -> datetime:
        """When the job was added, whichever attempt this is; the epoch for a record without
        created_at (written by hand), as readers show it, rather than a plausible wrong time."""
        return datetime.fromtimestamp(self.created_at_ms / 1000, UTC)

    @classmethod
    def from_row(cls, row: list[Any]) -> "ClaimedJob":
        """Never raises: a record missing fields becomes a job that fails with the reason."""
        job_id, queue, name, data, opts, started, created, token, meta = row
        defect = None if data is not None else "job record has no data field"
        try:
            options = options_from_json(opts or b"{}")
        except PayloadError as exc:
            options, defect = JobOptions(), str(exc)
        if defect is None and options.arq is not None:
            defect = options.arq.defect  # a call arq's queue handed over that cannot run
        # Each spelled out: a comprehension over the four is a function call of its own.
        queue_name = (queue or b"").decode("utf-8", "backslashreplace")
        return cls(
            id=(job_id or b"").decode("utf-8", "backslashreplace"),
            queue=queue_name,
            name=(name or b"").decode("utf-8", "backslashreplace") or queue_name,
            data=data or b"",
            options=options,
            attempt=int(started),
            created_at_ms=int(created) if created and created.isdigit() else 0,
            token=(token or b"").decode("utf-8", "backslashreplace"),
            defect=defect,
            meta=meta_from_json(meta) if meta else {},
        )


@dataclass(slots=True)
class Outcome:
    """How an attempt ended. Never changed once built (`dataclasses.replace` makes another); not
    frozen for the reason ClaimedJob is not: one is built per attempt."""

    kind: Literal["completed", "failed", "retry", "limited"]
    value: bytes = b""
    """Result JSON when completed, else the reason."""
    stacktrace: str = ""
    keep_count: int = -1
    keep_age_s: int = -1
    retry_delay_ms: int = 0
    """Retry: the backoff's delay. Limited: how long the whole queue is held."""


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

    async def attempt(
        self, claimed: ClaimedJob, ctx: dict[str, Any], reporter: Reporter | None = None
    ) -> Outcome:
        """Runs one attempt. CancelledError (shutdown, or the worker's timeout watchdog) propagates:
        the worker decides what it means."""
        opts = claimed.options
        try:
            if not self.accepts(claimed.name):
                raise PayloadError(
                    f"no handler for job name {claimed.name!r} on queue {self.queue!r}"
                )
            job = attempt_job(
                id=claimed.id,
                queue=claimed.queue,
                name=claimed.name,
                data=self.decode(claimed.data),
                attempt=claimed.attempt,
                options=opts,
                created_at=claimed.created_at,
                ctx=ctx,
                reporter=reporter or RecordingReporter(),
            )
            result = await self.fn(job)
            payload = (
                result.model_dump_json().encode()
                if isinstance(result, BaseModel)
                else dumps(result)
            )
        except RateLimited as exc:
            # Not the job's fault: it waits again, its attempt unspent, and the queue is held.
            return Outcome("limited", str(exc).encode(), retry_delay_ms=exc.delay_ms)
        except (PayloadError, UnrecoverableError) as exc:
            return failure(opts, exc)
        except Retry as exc:
            return deferred_retry(opts, claimed.attempt, exc)
        except Exception as exc:
            return failure_or_retry(opts, claimed.attempt, exc)
        count, age = retention_limits(opts.remove_on_complete)
        return Outcome("completed", payload, keep_count=count, keep_age_s=age)


def reason_of(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _safe(text: str) -> str:
    """Messages may carry undecodable bytes (surrogate-escaped file names): store them escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _stack(exc: BaseException) -> str:
    return _safe("".join(traceback.format_exception(exc))[-MAX_STACKTRACE:])


def failure(opts: JobOptions, exc: BaseException, reason: str | None = None) -> Outcome:
    """The job fails now, whatever attempts remain."""
    count, age = retention_limits(opts.remove_on_fail)
    text = _safe(reason or reason_of(exc))
    return Outcome("failed", text.encode(), _stack(exc), keep_count=count, keep_age_s=age)


def failure_or_retry(
    opts: JobOptions, attempt: int, exc: BaseException, reason: str | None = None
) -> Outcome:
    """Retried with the backoff's delay while attempts remain, else failed."""
    if attempt >= opts.attempts:
        return failure(opts, exc, reason)
    delay = opts.backoff.delay_for(attempt) if opts.backoff else 0
    text = _safe(reason or reason_of(exc))
    return Outcome("retry", text.encode(), _stack(exc), retry_delay_ms=delay)


def deferred_retry(opts: JobOptions, attempt: int, exc: Retry) -> Outcome:
    """arq's `Retry(defer=...)`: the handler names the delay (a receiver's Retry-After, say), which
    replaces the backoff for this retry; without one the backoff applies. It spends an attempt like
    any failure, as arq counts it against `max_tries`."""
    if exc.defer_score is None:
        return failure_or_retry(opts, attempt, exc)
    if attempt >= opts.attempts:
        return failure(opts, exc)
    return Outcome(
        "retry", _safe(reason_of(exc)).encode(), _stack(exc), retry_delay_ms=max(exc.defer_score, 0)
    )
