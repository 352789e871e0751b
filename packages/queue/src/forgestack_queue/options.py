"""Job options with BullMQ's names and units: milliseconds for times, seconds for retention age."""

import random
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_PRIORITY = 2**10
"""Priorities share a sorted-set score with a 43-bit fair-order tag (_prelude.lua fair_score): 10
bits keep the score exact in a double, and the tags do not wrap in practice."""

DAY_MS = 24 * 3600 * 1000
MAX_DELAY_MS = 365 * DAY_MS
"""Longest `delay`; the scripts also cap every due time they compute at this (MAX_DUE_DELAY)."""
MAX_TIMEOUT_MS = DAY_MS
MAX_BACKOFF_MS = 30 * DAY_MS
"""Longest wait before one retry: bounds `delay`, schedule entries and every computed backoff."""
MAX_BACKOFF_SCHEDULE = 100
MAX_KEEP_AGE_S = 10 * 365 * 24 * 3600
MAX_KEEP_COUNT = 1_000_000


class Backoff(BaseModel):
    """When a failed attempt runs again: `fixed`, `exponential` (2^(n-1) x delay) or an explicit schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["fixed", "exponential"] = "exponential"
    delay: int = Field(
        default=1000, ge=0, le=MAX_BACKOFF_MS, description="Base delay in milliseconds."
    )
    jitter: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Fraction of the delay randomised away (0 to 1)."
    )
    schedule: list[Annotated[int, Field(ge=0, le=MAX_BACKOFF_MS)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_BACKOFF_SCHEDULE,
        description="Milliseconds before retry 1, 2, ...; the last entry repeats. Wins over `type`.",
    )

    def delay_for(self, attempts_made: int, rng: random.Random | None = None) -> int:
        """Milliseconds to wait before the next try, after `attempts_made` tries have failed;
        never over MAX_BACKOFF_MS, however many attempts (2^(n-1) passes year 9999 near n=39)."""
        n = max(attempts_made, 1)
        if self.schedule:
            base = self.schedule[min(n, len(self.schedule)) - 1]
        elif self.type == "fixed":
            base = self.delay
        else:
            base = min(self.delay * 2 ** min(n - 1, 64), MAX_BACKOFF_MS)
        if self.jitter and base:
            base -= int(base * self.jitter * (rng or random).random())
        return base


class KeepJobs(BaseModel):
    """Keep finished jobs younger than `age` seconds and at most `count` of them; None means no limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    age: int | None = Field(default=None, ge=0, le=MAX_KEEP_AGE_S, description="Seconds.")
    count: int | None = Field(default=None, ge=0, le=MAX_KEEP_COUNT)


DEFAULT_KEEP_COMPLETED = KeepJobs(age=3600, count=1000)
"""The layer's own default: completed jobs are kept an hour, at most 1,000 per queue."""
DEFAULT_KEEP_FAILED = KeepJobs(age=7 * 24 * 3600, count=10_000)
"""The layer's own default: failed jobs are kept a week, at most 10,000 per queue."""

Retention = bool | Annotated[int, Field(ge=0, le=MAX_KEEP_COUNT)] | KeepJobs
"""`True` removes at once, `False` keeps forever, `N` keeps the newest N per queue."""


def retention_limits(rule: Retention) -> tuple[int, int]:
    """(count, age_s) for the finish script; -1 means unlimited, count 0 means remove at once."""
    if rule is True:
        return 0, -1
    if rule is False:
        return -1, -1
    if isinstance(rule, int):
        return rule, -1
    return (
        -1 if rule.count is None else rule.count,
        -1 if rule.age is None else rule.age,
    )


class ArqCallOptions(BaseModel):
    """What arq's `enqueue_job(_expires=, _job_try=)` asked for; enforced by the handlers built
    from arq `Function`s (forgestack_queue.arq_functions). Jobs taken from arq's own queue (a
    plain arq pool, forgestack_queue.arq_intake) also say where to answer and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expires_at: int | None = Field(
        default=None, ge=0, description="Epoch ms after which no attempt starts (arq `_expires`)."
    )
    job_try: int = Field(default=1, ge=1, description="arq's try number of the first attempt.")
    queue_name: str | None = Field(
        default=None,
        description="arq's queue (sorted set) the job was taken from; its outcome is written to "
        "arq's result key for a plain arq pool's `Job`.",
    )
    arq_id: str | None = Field(default=None, description="The job's id in arq's keys.")
    enqueued_at: int | None = Field(
        default=None, ge=0, description="arq's enqueue time (epoch ms), which identifies the call."
    )
    pickle: bool = Field(default=False, description="The call was pickled: answer in pickle.")
    defect: str | None = Field(
        default=None,
        description="Why the call cannot run (invalid payload, unknown function, refused "
        "serializer): the job fails with this reason at its first claim, without running.",
    )


class JobOptions(BaseModel):
    """Per-call options; fields left unset fall back to the queue's defaults (see `merged_over`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(default=1, ge=1, le=1000, description="Total tries, the first included.")
    backoff: Backoff | None = Field(default=None, description="None retries at once.")
    delay: int = Field(
        default=0, ge=0, le=MAX_DELAY_MS, description="Milliseconds before the job may run."
    )
    priority: int = Field(
        default=0,
        ge=0,
        lt=MAX_PRIORITY,
        description="0 (no priority) runs before 1, 1 before 2, ...; FIFO within one priority.",
    )
    remove_on_complete: Retention = Field(default=DEFAULT_KEEP_COMPLETED)
    remove_on_fail: Retention = Field(default=DEFAULT_KEEP_FAILED)
    job_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9._:@/+=-]+$",
        description="Idempotency key: adding an existing id returns the existing job. Not purely "
        "numeric (reserved for generated ids).",
        # The numeric rule below, in the schema too, so clients and fuzzers see it.
        json_schema_extra={"not": {"type": "string", "pattern": "^[0-9]+$"}},
    )
    timeout: int | None = Field(
        default=None,
        gt=0,
        le=MAX_TIMEOUT_MS,
        description="Milliseconds one attempt may run before it fails.",
    )
    arq: ArqCallOptions | None = Field(
        default=None, description="Set by `ArqRedis.enqueue_job`'s `_expires` and `_job_try`."
    )

    @model_validator(mode="after")
    def _reject_numeric_job_id(self) -> Self:
        if self.job_id is not None and self.job_id.isdigit():
            raise ValueError("job_id must not be purely numeric (reserved for generated ids)")
        return self

    def merged_over(self, defaults: "JobOptions") -> "JobOptions":
        """Explicitly set fields win; the rest come from `defaults` (the queue's catalog entry)."""
        explicit = {name: getattr(self, name) for name in self.model_fields_set}
        return defaults.model_copy(update=explicit)
