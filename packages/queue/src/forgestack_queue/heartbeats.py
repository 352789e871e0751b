"""When a worker's heartbeat runs (health key, registration, cron ticks: round trips and a few ms
of schedule arithmetic): once per turn of the claim loop, except the first, which goes out beside
the first claim rather than before it, so a starting worker's first jobs wait for one round trip,
not two. That first beat outlives its turn, so the next turn and the worker's stop settle it."""

import asyncio
from collections.abc import Awaitable, Callable


class Heartbeats:
    def __init__(self, beat: Callable[[], Awaitable[None]]) -> None:
        self._beat = beat
        self._beaten = False
        self.first: asyncio.Task[None] | None = None
        """The first heartbeat, run beside the first claim, until the next turn awaits it."""

    async def turn(self) -> None:
        """The first heartbeat runs as a task beside the first claim, which goes out first; every
        later one in turn. The next turn awaits the first (its error surfaces here, for the loop)
        and beats again unless the first was still under way."""
        if not self._beaten:
            self._beaten = True
            self.first = asyncio.get_running_loop().create_task(self._behind_claim())
            return
        if self.first is not None:
            first, self.first = self.first, None
            pending = not first.done()
            await first
            if pending:
                return  # it has just beaten for this turn
        await self._beat()

    async def _behind_claim(self) -> None:
        """The first beat, one loop step late: the claim's task, made after this one in the same
        turn, then sends its script call before the beat sends anything."""
        await asyncio.sleep(0)
        await self._beat()

    async def stop(self) -> None:
        """Done before the worker leaves the registry: a late first beat would list it."""
        if self.first is not None:
            self.first.cancel()
            await asyncio.wait([self.first])
            if not self.first.cancelled():
                self.first.exception()  # retrieved: the stop matters now, not it
