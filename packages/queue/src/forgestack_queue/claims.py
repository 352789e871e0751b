"""The worker's claim call. Each call passes a fresh random token, which claim.lua stamps on every
job it claims: a claim whose reply was lost (the connection dropped after the script ran) can then
be undone by token, so those jobs do not sit active until their lease expires and spend an attempt
they never ran. The token costs nothing on the hot path; only a lost reply costs one more call.

Random per call also means a token never recurs, not even after an operator retry resets a job's
attempt count, so a late outcome from an earlier run can never pass the finish script's fence."""

import secrets
from collections.abc import Mapping
from typing import Any

from loguru import logger
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .keys import QueueKeys, job_key_prefix
from .limits import NO_LIMITS, QueueLimits
from .runner import ClaimedJob
from .scripts import Scripts


class Claimer:
    def __init__(
        self,
        scripts: Scripts,
        queue_prefix: str,
        queues: list[str],
        *,
        worker_id: str,
        lease_ms: int,
        limits: Mapping[str, QueueLimits] | None = None,
    ) -> None:
        """`limits`: each queue's own (the catalog's); an operator's override in Redis wins."""
        self._scripts = scripts
        self._job_prefix = job_key_prefix(queue_prefix)
        self._queues = queues
        self._worker_id = worker_id
        self._lease_ms = lease_ms
        keys = [QueueKeys(queue_prefix, q) for q in queues]
        self._claim_keys = [key for k in keys for key in k.claim_keys]
        self._release_keys = [key for k in keys for key in k.release_keys]
        self._limit_args = [
            n for q in queues for n in (limits or {}).get(q, NO_LIMITS).claim_args()
        ]
        self._rotation = 0
        self._lost: list[str] = []
        """Tokens of claims whose reply never arrived and that are not yet undone."""

    async def claim(self, want: int) -> tuple[list[ClaimedJob], int, int]:
        """Up to `want` jobs, the server's next delayed due time (-1: none) and its clock (ms)."""
        # Raises while Redis is still unreachable: the worker's loop backs off and comes back.
        await self.release_lost()
        token = self._token()
        try:
            reply = await self._scripts.claim(
                keys=self._claim_keys, args=self._claim_args(want, token)
            )
        except (RedisConnectionError, RedisTimeoutError):
            # The script may have run: whatever it claimed is undone before the next claim.
            self._lost.append(token)
            raise
        return _jobs(reply), int(reply[1]), int(reply[0])

    async def finish_and_claim(
        self, finish_args: list[Any], want: int
    ) -> tuple[list[int], list[ClaimedJob]]:
        """finish.lua's call (its reply: one code per outcome) that also claims up to `want` jobs
        for the slots those outcomes free (finish_claim.lua). Its claim is fenced like any other:
        a lost reply's jobs are released by token before the next claim."""
        await self.release_lost()
        token = self._token()
        try:
            kept, reply = await self._scripts.finish_claim(
                keys=self._claim_keys, args=[*finish_args, *self._claim_args(want, token)]
            )
        except (RedisConnectionError, RedisTimeoutError):
            self._lost.append(token)
            raise
        return [int(k) for k in kept], _jobs(reply)

    def _token(self) -> str:
        return f"{self._worker_id}:{secrets.token_hex(6)}"

    def _claim_args(self, want: int, token: str) -> list[Any]:
        self._rotation = (self._rotation + 1) % len(self._queues)
        return [
            self._job_prefix,
            want,
            self._lease_ms,
            token,
            self._rotation,
            *self._queues,
            *self._limit_args,
        ]

    async def release_lost(self) -> None:
        """Undoes the claims whose reply was lost; a no-op (no call) when there are none."""
        if not self._lost:
            return
        # The worker's loop and its outcome writer both claim: a token lost while this call is
        # under way stays listed for the next one.
        tokens = list(self._lost)
        released = await self._scripts.release_claim(
            keys=self._release_keys, args=[self._job_prefix, *tokens]
        )
        if released:
            logger.warning(
                "{} jobs of a claim whose reply was lost went back to waiting, attempt not spent",
                released,
            )
        self._lost = [t for t in self._lost if t not in tokens]


def _jobs(reply: list[Any]) -> list[ClaimedJob]:
    """claim.lua's reply is {now, next_due, job, job, ...}."""
    return [ClaimedJob.from_row(row) for row in reply[2:]]
