"""Operator controls of a whole queue, for every worker at once: pause and resume, and limit
overrides set at run time over the catalog's. Stored in the queue's control hash, which the claim
script reads on every claim (see _prelude.lua), so a change holds from the next claim on."""

from dataclasses import dataclass

from redis.asyncio import Redis

from .keys import layout_for
from .limits import OwnerLimits, QueueLimits, RateLimit, limit_values

_LIMIT_FIELDS = ("max", "duration_ms", "concurrency")
_OWNER_FIELDS = tuple(f"owner_{name}" for name in _LIMIT_FIELDS)


@dataclass(frozen=True, slots=True)
class QueueControl:
    paused: bool
    limits_override: QueueLimits | None
    """Set by an operator over the catalog's limits; None: the catalog's apply."""
    held_until_ms: int
    """A handler's RateLimited holds the queue until then (server ms; 0 when never held)."""


class QueueControls:
    def __init__(self, redis: Redis, name: str, *, prefix: str = "fs") -> None:
        self._redis = redis
        self._keys = layout_for(redis, prefix, name)
        # On a cluster: no MULTI (redis-py has none there); the marker is only a wake-up hint.
        self._atomic = not self._keys.tagged

    async def pause(self) -> None:
        """No worker starts another job of the queue; running ones finish, adds still wait."""
        await self._redis.hset(self._keys.ctl, "paused", "1")  # type: ignore[misc]

    async def resume(self) -> None:
        async with self._redis.pipeline(transaction=self._atomic) as pipe:
            pipe.hdel(self._keys.ctl, "paused")
            pipe.zadd(self._keys.marker, {"0": 0})  # idle workers are blocked: wake one
            await pipe.execute()

    async def set_limits(self, limits: QueueLimits) -> None:
        """Replaces the catalog's limits until `clear_limits`; a None field means no such limit."""
        owner = limits.per_owner or OwnerLimits()
        values = dict(
            zip(
                _LIMIT_FIELDS + _OWNER_FIELDS,
                limit_values(limits.rate_limit, limits.concurrency)
                + limit_values(owner.rate_limit, owner.concurrency),
                strict=True,
            )
        )
        async with self._redis.pipeline(transaction=self._atomic) as pipe:
            pipe.hset(self._keys.ctl, mapping=values)
            pipe.zadd(self._keys.marker, {"0": 0})  # a loosened limit may let jobs run now
            await pipe.execute()

    async def clear_limits(self) -> None:
        async with self._redis.pipeline(transaction=self._atomic) as pipe:
            pipe.hdel(self._keys.ctl, *_LIMIT_FIELDS, *_OWNER_FIELDS)
            pipe.zadd(self._keys.marker, {"0": 0})
            await pipe.execute()

    async def read(self) -> QueueControl:
        raw: dict[bytes, bytes] = await self._redis.hgetall(self._keys.ctl)  # type: ignore[misc]
        fields = {k.decode(): int(v) for k, v in raw.items() if v.isdigit()}
        override = None
        if "max" in fields or "concurrency" in fields:
            owner = OwnerLimits(
                rate_limit=_rate(fields, "owner_"),
                concurrency=fields.get("owner_concurrency") or None,
            )
            override = QueueLimits(
                rate_limit=_rate(fields, ""),
                concurrency=fields.get("concurrency") or None,
                per_owner=owner if owner != OwnerLimits() else None,
            )
        return QueueControl(
            paused="paused" in fields,
            limits_override=override,
            held_until_ms=fields.get("hold_until", 0),
        )


def _rate(fields: dict[str, int], prefix: str) -> RateLimit | None:
    most, window = fields.get(f"{prefix}max", 0), fields.get(f"{prefix}duration_ms", 0)
    return RateLimit(max=most, duration_ms=window) if most > 0 and window > 0 else None
