"""Per-job timeouts enforced by one watchdog per worker: a timer per attempt (asyncio.timeout) was
the worker's largest single cost per job in the profile, for deadlines that almost never fire."""

import asyncio

TICK_S = 0.02
"""How late past its deadline a job may be cancelled: timeouts are coarse by nature."""


class Deadlines:
    def __init__(self) -> None:
        self._due: dict[str, tuple[float, asyncio.Task[None]]] = {}
        self._expired: set[str] = set()

    def watch(self, job_id: str, task: "asyncio.Task[None]", seconds: float) -> None:
        self._due[job_id] = (asyncio.get_running_loop().time() + seconds, task)

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
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(TICK_S)
            now = loop.time()
            late = [job_id for job_id, (due, _) in self._due.items() if due <= now]
            for job_id in late:
                _, task = self._due.pop(job_id)
                self._expired.add(job_id)
                task.cancel()
