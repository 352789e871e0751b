"""Per-queue limits enforced by the claim script across every worker: a rate limit (starts per
sliding window) and a cap on the queue's jobs running at once in the whole fleet, for the queue as a
whole and, optionally, for each owner of its jobs (organisation) on its own."""

from pydantic import BaseModel, ConfigDict, Field

MAX_LIMIT = 100_000
"""Highest `max` and `concurrency`: the rate window keeps one entry per start, so it stays small."""
MAX_WINDOW_MS = 24 * 3600 * 1000


class RateLimit(BaseModel):
    """At most `max` jobs of the queue start in any `duration_ms` window (BullMQ's limiter)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max: int = Field(ge=1, le=MAX_LIMIT, description="Starts allowed per window.")
    duration_ms: int = Field(ge=1, le=MAX_WINDOW_MS, description="Window length in ms.")


class OwnerLimits(BaseModel):
    """The same limits for each owner's jobs on their own (BullMQ Pro's group limits): one
    organisation cannot take every slot or the whole rate of a shared queue. Unowned jobs
    (operator, cron) answer to the queue's limits only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_limit: RateLimit | None = Field(
        default=None, description="Starts of one owner's jobs per window; None: no such limit."
    )
    concurrency: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LIMIT,
        description="Most jobs of one owner running at once across all workers; None: no cap.",
    )


def limit_values(rate: RateLimit | None, concurrency: int | None) -> tuple[int, int, int]:
    """(rate max, window ms, cap) as the claim script and the control hash hold them (0: none)."""
    return (rate.max if rate else 0, rate.duration_ms if rate else 0, concurrency or 0)


class QueueLimits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_limit: RateLimit | None = Field(default=None, description="None: no rate limit.")
    concurrency: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LIMIT,
        description="Most jobs of the queue running at once across all workers; None: no cap.",
    )
    per_owner: OwnerLimits | None = Field(
        default=None, description="Limits for each owner's jobs on their own; None: none."
    )

    def claim_args(self) -> list[int]:
        """The six values claim.lua reads per queue: rate max, window ms, cap (0: none), for the
        queue, then the same for each owner."""
        owner = self.per_owner or OwnerLimits()
        queue = limit_values(self.rate_limit, self.concurrency)
        return [*queue, *limit_values(owner.rate_limit, owner.concurrency)]


NO_LIMITS = QueueLimits()
