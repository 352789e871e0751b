"""Operations on one job that an owner may ask for at any time: cancel, promote, re-prioritise.
Each is one atomic script that keeps the owner indexes in step; a `Queue` mixes them in."""

from typing import TYPE_CHECKING

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from .errors import InvalidJobStateError, JobNotFoundError
from .keys import QueueKeys, worker_channel_prefix
from .options import MAX_PRIORITY
from .records import JobRecord
from .scripts import Scripts

CANCELLED = "cancelled"
"""The failed reason of a cancelled job (as cancel.lua and the worker write it)."""


class JobActions:
    """Needs the `Queue` attributes below; ids are the view's own (local for an owner)."""

    redis: Redis
    name: str
    prefix: str
    keys: QueueKeys
    _scripts: Scripts

    if TYPE_CHECKING:  # defined by `Queue`

        def _full(self, job_id: str) -> str | None: ...

        async def get_job(self, job_id: str) -> JobRecord | None: ...

    async def cancel(self, job_id: str) -> JobRecord:
        """Waiting or delayed: failed as `cancelled` now. Active: its worker cancels the handler
        (asyncio.CancelledError, within about a second) and fails it as `cancelled`; the record
        returned may still show it active. Never retried either way."""
        state = await self._act(self._scripts.cancel, job_id, worker_channel_prefix(self.prefix))
        if state not in ("waiting", "delayed", "active"):
            raise InvalidJobStateError(job_id, state, "waiting, delayed or active")
        return await self._record(job_id)

    async def promote(self, job_id: str) -> JobRecord:
        """A delayed job runs now: it joins the waiting jobs of its priority."""
        state = await self._act(self._scripts.promote, job_id)
        if state != "delayed":
            raise InvalidJobStateError(job_id, state, "delayed")
        return await self._record(job_id)

    async def set_priority(self, job_id: str, priority: int) -> JobRecord:
        """New priority for a waiting or delayed job (0 runs first, then 1, 2, ...)."""
        if not 0 <= priority < MAX_PRIORITY:
            raise ValueError(f"priority must be between 0 and {MAX_PRIORITY - 1}")
        state = await self._act(self._scripts.set_priority, job_id, priority)
        if state not in ("waiting", "delayed"):
            raise InvalidJobStateError(job_id, state, "waiting or delayed")
        return await self._record(job_id)

    async def _act(self, script: AsyncScript, job_id: str, *extra: str | int) -> str:
        full = self._full(job_id)
        if full is None:
            raise JobNotFoundError(job_id)
        args = [self.keys.job_prefix, self.keys.base, self.name, full, *extra]
        state: bytes = await script(keys=[self.keys.job(full)], args=args)
        if state == b"missing":
            raise JobNotFoundError(job_id)
        return state.decode()

    async def _record(self, job_id: str) -> JobRecord:
        record = await self.get_job(job_id)
        if record is None:
            raise JobNotFoundError(job_id)
        return record
