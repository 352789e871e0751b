"""Polling a job layer condition from an async test: one loop, one failure message."""

import asyncio
import time
from collections.abc import Awaitable, Callable


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < end, "condition not reached in time"
        await asyncio.sleep(0.02)
