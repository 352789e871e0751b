"""The worker's claim call. Each call passes a fresh random token, which claim.lua stamps on every
job it claims: a claim whose reply was lost (the connection dropped after the script ran) can then
be undone by token, so those jobs do not sit active until their lease expires and spend an attempt
they never ran. The token costs nothing on the hot path; only a lost reply costs one more call.

Random per call also means a token never recurs, not even after an operator retry resets a job's
attempt count, so a late outcome from an earlier run can never pass the finish script's fence.

On a Redis Cluster (tagged layout) no script may touch two queues' slots: the claimer keeps one
call group per queue and a claim visits the groups in turn (rotating its start) until it has
what it wants; on a single Redis all queues are one group, so a claim stays one call."""

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .keys import QueueKeys
from .limits import NO_LIMITS, QueueLimits
from .runner import ClaimedJob
from .scripts import Scripts


@dataclass(frozen=True, slots=True)
class _Group:
    """Queues one script call serves: all of them on a single Redis, one on a cluster."""

    job_prefix: str
    queues: list[str]
    claim_keys: list[str]
    release_keys: list[str]
    limit_args: list[int]


def _group(keys: Sequence[QueueKeys], limits: Mapping[str, QueueLimits]) -> _Group:
    return _Group(
        job_prefix=keys[0].job_prefix,
        queues=[k.queue for k in keys],
        claim_keys=[key for k in keys for key in k.claim_keys],
        release_keys=[key for k in keys for key in k.release_keys],
        limit_args=[n for k in keys for n in limits.get(k.queue, NO_LIMITS).claim_args()],
    )


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
        tagged: bool = False,
    ) -> None:
        """`limits`: each queue's own (the catalog's); an operator's override in Redis wins.
        `tagged`: the Redis Cluster layout (one call group per queue)."""
        self._scripts = scripts
        self._worker_id = worker_id
        self._lease_ms = lease_ms
        keys = [QueueKeys(queue_prefix, q, tagged) for q in queues]
        self._groups = (
            [_group([k], limits or {}) for k in keys] if tagged else [_group(keys, limits or {})]
        )
        self._by_queue = {q: g for g in self._groups for q in g.queues}
        self._rotation = 0
        self._group_turn = 0
        self._lost: list[str] = []
        """Tokens of claims whose reply never arrived and that are not yet undone."""

    async def claim(self, want: int) -> tuple[list[ClaimedJob], int, int]:
        """Up to `want` jobs, the server's next delayed due time (-1: none) and its clock (ms)."""
        # Raises while Redis is still unreachable: the worker's loop backs off and comes back.
        await self.release_lost()
        token = self._token()
        jobs: list[ClaimedJob] = []
        next_due, now = -1, 0
        self._group_turn = (self._group_turn + 1) % len(self._groups)
        for i in range(len(self._groups)):
            group = self._groups[(self._group_turn + i) % len(self._groups)]
            try:
                reply = await self._scripts.claim(
                    keys=group.claim_keys, args=self._claim_args(group, want - len(jobs), token)
                )
            except (RedisConnectionError, RedisTimeoutError):
                # The script may have run: whatever it claimed is undone before the next claim.
                self._lost.append(token)
                raise
            except Exception:
                # A script that stopped part-way may have started jobs, and this call's earlier
                # groups did: undone before the next claim, not left to the lease (which would
                # spend an attempt of jobs that never ran).
                self._lost.append(token)
                raise
            jobs += _jobs(reply)
            due, now = int(reply[1]), int(reply[0])
            if due >= 0 and (next_due < 0 or due < next_due):
                next_due = due
            if len(jobs) >= want:
                break
        return jobs, next_due, now

    async def finish_and_claim(
        self, finish_args: list[Any], want: int, queue: str | None = None
    ) -> tuple[list[int], list[ClaimedJob]]:
        """finish.lua's call (its reply: one code per outcome) that also claims up to `want` jobs
        for the slots those outcomes free (finish_claim.lua). Its claim is fenced like any other:
        a lost reply's jobs are released by token before the next claim. `queue`: on a cluster,
        the one queue whose outcomes these are; the claim then takes from that queue only."""
        await self.release_lost()
        token = self._token()
        group = self._groups[0] if queue is None else self._by_queue[queue]
        try:
            kept, reply = await self._scripts.finish_claim(
                keys=group.claim_keys, args=[*finish_args, *self._claim_args(group, want, token)]
            )
        except Exception:
            # A lost reply, or a script that stopped part-way: the claim may have started jobs.
            self._lost.append(token)
            raise
        return [int(k) for k in kept], _jobs(reply)

    def _token(self) -> str:
        return f"{self._worker_id}:{secrets.token_hex(6)}"

    def _claim_args(self, group: _Group, want: int, token: str) -> list[Any]:
        self._rotation += 1
        return [
            group.job_prefix,
            want,
            self._lease_ms,
            token,
            self._rotation % len(group.queues),
            *group.queues,
            *group.limit_args,
        ]

    async def release_lost(self) -> None:
        """Undoes the claims whose reply was lost; a no-op (no call) when there are none."""
        if not self._lost:
            return
        # The worker's loop and its outcome writer both claim: a token lost while this call is
        # under way stays listed for the next one.
        tokens = list(self._lost)
        released = 0
        for group in self._groups:
            released += await self._scripts.release_claim(
                keys=group.release_keys, args=[group.job_prefix, *tokens]
            )
        if released:
            logger.warning(
                "{} jobs of a claim whose reply was lost or whose script stopped went back to "
                "waiting, attempt not spent",
                released,
            )
        self._lost = [t for t in self._lost if t not in tokens]


def _jobs(reply: list[Any]) -> list[ClaimedJob]:
    """claim.lua's reply is {now, next_due, job, job, ...}."""
    return [ClaimedJob.from_row(row) for row in reply[2:]]
