"""Per-job timeouts enforced by one watchdog per worker: a timer per attempt (asyncio.timeout) was
the worker's largest single cost per job in the profile, for deadlines that almost never fire.

A handler can catch the cancellation and carry on (a retry loop with a bare `except`). Cancelling
once and forgetting would leave such a job held for ever, so an attempt still running `grace_s`
after its cancellation is handed to `on_stuck`: the worker records it without the handler."""

import asyncio
import contextlib
import io
import math
from collections.abc import Callable
from typing import Any

from .runner import MAX_STACKTRACE

TICK_S = 0.02
"""How late past its deadline a job may be cancelled: timeouts are coarse by nature."""


class Deadlines:
    """Keyed per attempt, not by job id: one worker may hold two attempts of one job (its lease
    lapsed during an event-loop stall and it claimed the job again)."""

    def __init__(self, grace_s: float, on_stuck: Callable[[str], None]) -> None:
        self._grace_s = grace_s
        self._on_stuck = on_stuck
        self._due: dict[str, tuple[float, asyncio.Task[None]]] = {}
        self._expired: set[str] = set()
        self._next_check = math.inf
        self._sooner = asyncio.Event()

    def watch(self, key: str, task: "asyncio.Task[None]", seconds: float) -> None:
        due = asyncio.get_running_loop().time() + seconds
        self._due[key] = (due, task)
        if due < self._next_check:
            self._sooner.set()

    def forget(self, key: str) -> None:
        self._due.pop(key, None)
        self._expired.discard(key)

    def expired(self, key: str) -> bool:
        """True for an attempt the watchdog cancelled (as opposed to a shutdown)."""
        return key in self._expired

    async def run(self) -> None:
        """Sleeps until the earliest deadline (or an earlier one is added): an idle worker, or
        one whose jobs have distant deadlines, wakes for nothing."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            late = [key for key, (due, _) in self._due.items() if due <= now]
            for key in late:
                _, task = self._due.pop(key)
                if task.done():
                    continue
                if key in self._expired:
                    self._on_stuck(key)
                else:
                    self._expired.add(key)
                    self._due[key] = (now + self._grace_s, task)
                    task.cancel()
            earliest = min((due for due, _ in self._due.values()), default=math.inf)
            self._next_check = max(earliest, now + TICK_S)
            self._sooner.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(
                    None if earliest == math.inf else self._next_check - now
                ):
                    await self._sooner.wait()


def stuck_at(task: "asyncio.Task[Any]") -> str:
    """Where a handler that ignores cancellation is stuck: what an operator needs to fix it."""
    out = io.StringIO()
    task.print_stack(file=out)
    return out.getvalue()[-MAX_STACKTRACE:]
