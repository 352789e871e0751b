"""Per-queue limits enforced by the claim script across every worker: a rate limit (starts per
sliding window) and a cap on the queue's jobs running at once in the whole fleet."""

from pydantic import BaseModel, ConfigDict, Field

MAX_LIMIT = 100_000
"""Highest `max` and `concurrency`: the rate window keeps one entry per start, so it stays small."""
MAX_WINDOW_MS = 24 * 3600 * 1000


class RateLimit(BaseModel):
    """At most `max` jobs of the queue start in any `duration_ms` window (BullMQ's limiter)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max: int = Field(ge=1, le=MAX_LIMIT, description="Starts allowed per window.")
    duration_ms: int = Field(ge=1, le=MAX_WINDOW_MS, description="Window length in ms.")


class QueueLimits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_limit: RateLimit | None = Field(default=None, description="None: no rate limit.")
    concurrency: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LIMIT,
        description="Most jobs of the queue running at once across all workers; None: no cap.",
    )

    def claim_args(self) -> list[int]:
        """The three values claim.lua reads per queue: rate max, window ms, cap (0: none)."""
        rate = self.rate_limit
        return [rate.max if rate else 0, rate.duration_ms if rate else 0, self.concurrency or 0]


NO_LIMITS = QueueLimits()
