"""A probe queue whose handler records every execution, so tests assert what really ran."""

import asyncio
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
    """ok | fail | fail-until-<n> | unrecoverable | sleep"""
    seconds: float = 0.0


@dataclass
class Probe:
    runs: list[tuple[str, int, float]] = field(default_factory=list)
    """(tag, attempt, loop time) per execution, in execution order."""
    started: asyncio.Event = field(default_factory=asyncio.Event)
    broken: bool = False
    """Mode `fail-if-broken` fails while this is set: a dependency that an operator later fixes."""

    async def handle(self, job: Job[ProbeData]) -> dict[str, Any]:
        self.runs.append((job.data.tag, job.attempt, asyncio.get_running_loop().time()))
        self.started.set()
        mode = job.data.mode
        if mode == "sleep":
            await asyncio.sleep(job.data.seconds)
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
