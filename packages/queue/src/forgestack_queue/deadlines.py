"""Per-job timeouts enforced by one watchdog per worker: a timer per attempt (asyncio.timeout) was
the worker's largest single cost per job in the profile, for deadlines that almost never fire."""

import asyncio
import contextlib
import math

TICK_S = 0.02
"""How late past its deadline a job may be cancelled: timeouts are coarse by nature."""


class Deadlines:
    def __init__(self) -> None:
        self._due: dict[str, tuple[float, asyncio.Task[None]]] = {}
        self._expired: set[str] = set()
        self._next_check = math.inf
        self._sooner = asyncio.Event()

    def watch(self, job_id: str, task: "asyncio.Task[None]", seconds: float) -> None:
        due = asyncio.get_running_loop().time() + seconds
        self._due[job_id] = (due, task)
        if due < self._next_check:
            self._sooner.set()

    def forget(self, job_id: str) -> None:
        self._due.pop(job_id, None)
        self._expired.discard(job_id)

    def expired(self, job_id: str) -> bool:
        """True once for a job the watchdog cancelled (as opposed to a shutdown)."""
        if job_id in self._expired:
            self._expired.discard(job_id)
            return True
        return False

    async def run(self) -> None:
        """Sleeps until the earliest deadline (or an earlier one is added): an idle worker, or
        one whose jobs have distant deadlines, wakes for nothing."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            late = [job_id for job_id, (due, _) in self._due.items() if due <= now]
            for job_id in late:
                _, task = self._due.pop(job_id)
                self._expired.add(job_id)
                task.cancel()
            earliest = min((due for due, _ in self._due.values()), default=math.inf)
            self._next_check = max(earliest, now + TICK_S)
            self._sooner.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(
                    None if earliest == math.inf else self._next_check - now
                ):
                    await self._sooner.wait()
