"""A probe queue whose handler records every execution, so tests assert what really ran."""

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from forgestack_queue.errors import UnrecoverableError
from forgestack_queue.job import Job
from forgestack_queue.runner import Handler
from pydantic import BaseModel

PROBE = "probe"


class ProbeData(BaseModel):
    tag: str
    mode: str = "ok"
    """ok | report | fail | fail-until-<n> | unrecoverable | sleep | swallow-cancel | longer-on-retry"""
    seconds: float = 0.0


@dataclass
class Probe:
    runs: list[tuple[str, int, float]] = field(default_factory=list)
    """(tag, attempt, loop time) per execution, in execution order."""
    started: asyncio.Event = field(default_factory=asyncio.Event)
    ended: list[tuple[str, int]] = field(default_factory=list)
    """(tag, attempt) of every execution that returned or raised, even one the worker abandoned."""
    broken: bool = False
    """Mode `fail-if-broken` fails while this is set: a dependency that an operator later fixes."""

    async def handle(self, job: Job[ProbeData]) -> dict[str, Any]:
        self.runs.append((job.data.tag, job.attempt, asyncio.get_running_loop().time()))
        self.started.set()
        try:
            return await self._behave(job)
        finally:
            self.ended.append((job.data.tag, job.attempt))

    async def _behave(self, job: Job[ProbeData]) -> dict[str, Any]:
        mode = job.data.mode
        if mode == "sleep":
            await asyncio.sleep(job.data.seconds)
        if mode == "swallow-cancel" and job.attempt == 1:
            # A retry loop with a bare except: every cancellation is caught and the wait goes on.
            end = asyncio.get_running_loop().time() + job.data.seconds
            while (left := end - asyncio.get_running_loop().time()) > 0:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(left)
        if mode == "longer-on-retry":
            await asyncio.sleep(job.data.seconds * (1 if job.attempt == 1 else 3))
        if mode == "report":
            await job.update_progress(50)
            await job.log(f"half way through {job.data.tag}")
            await job.update_progress({"done": 2, "of": 2})
        if mode == "fail":
            raise RuntimeError(f"probe {job.data.tag} failed on attempt {job.attempt}")
        if mode.startswith("fail-until-") and job.attempt < int(mode.removeprefix("fail-until-")):
            raise RuntimeError(f"transient failure on attempt {job.attempt}")
        if mode == "fail-if-broken" and self.broken:
            raise RuntimeError("dependency is down")
        if mode == "cancel-itself":
            # A future something else cancelled: the handler's own error, not a shutdown.
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            future.cancel()
            await future
        if mode == "undecodable-reason":
            name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
            raise OSError(f"cannot open {name}")
        if mode == "own-timeout":
            raise TimeoutError("connect timed out")
        if mode == "unrecoverable":
            raise UnrecoverableError("cannot ever succeed")
        return {"tag": job.data.tag, "attempt": job.attempt}

    def handler(self) -> Handler[ProbeData, dict[str, Any]]:
        return Handler(queue=PROBE, fn=self.handle, data_model=ProbeData)

    def tags(self) -> list[str]:
        return [tag for tag, _, _ in self.runs]
