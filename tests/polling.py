"""Waiting for a local server a test started (Sentinel, a cluster) to reach a state: one loop, so
every launcher polls alike and fails with the same message."""

import time
from collections.abc import Callable

import redis


def wait_until(check: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    """Redis and socket errors count as "not yet": the server may still be starting."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
