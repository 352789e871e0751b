"""`Job[T]`: what a handler receives. Built by the runner in production and by `make_job` in tests."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from loguru import logger as root_logger

from .options import JobOptions
from .progress import RecordingReporter, Reporter

if TYPE_CHECKING:
    from loguru import Logger

DataT = TypeVar("DataT")


@dataclass(frozen=True)
class Job(Generic[DataT]):
    id: str
    queue: str
    name: str
    data: DataT
    attempt: int
    """1 on the first try, 2 on the first retry, ..."""
    options: JobOptions = field(default_factory=JobOptions)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When the job was added (the same on every attempt; `make_job` defaults it to now)."""
    ctx: Mapping[str, Any] = field(default_factory=dict)
    """The worker's shared resources (HTTP client, SMTP sender, DB engine), set in on_startup."""
    reporter: Reporter = field(default_factory=RecordingReporter, repr=False, compare=False)
    """Where update_progress and log go: the job's record in Redis when a worker runs it."""

    @cached_property
    def logger(self) -> "Logger":
        """Loguru logger with job_id, queue and attempt bound, so every line names its job."""
        return root_logger.bind(job_id=self.id, queue=self.queue, attempt=self.attempt)

    async def update_progress(self, value: int | float | dict[str, Any]) -> bool:
        """Stores the job's progress (a number or a JSON object) and emits a `progress` event.
        False when it could not be recorded (Redis slow or away, or the attempt lost its lease):
        reporting never fails the job."""
        return await self.reporter.progress(value)

    async def log(self, line: str) -> bool:
        """Appends a line to the job's log (the last 100 lines are kept) and emits a `log`
        event; False when it could not be recorded, as for update_progress."""
        return await self.reporter.log(line)

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.options.attempts


def attempt_job(
    id: str,
    queue: str,
    name: str,
    data: DataT,
    attempt: int,
    options: JobOptions,
    created_at: datetime,
    ctx: Mapping[str, Any],
    reporter: Reporter,
) -> Job[DataT]:
    """The Job the worker hands one attempt: the same as `Job(...)` with every field given, still
    frozen, but built without the frozen dataclass's __init__ (which sets each field through
    object.__setattr__, four times the cost of one dict update, once per attempt)."""
    job: Job[DataT] = object.__new__(Job)
    job.__dict__.update(
        id=id,
        queue=queue,
        name=name,
        data=data,
        attempt=attempt,
        options=options,
        created_at=created_at,
        ctx=ctx,
        reporter=reporter,
    )
    return job
