"""Giving back to the system what start-up and bursts of requests allocated and freed.

Importing and building the app (modules, pydantic schemas, routes) allocates and frees megabytes;
glibc's allocator keeps freed heap pages mapped unless asked, so the process would carry them for
its whole life. `malloc_trim(0)` returns them: about 4 MiB of the API's resident memory at start.

A burst of requests does the same at a larger scale: 32 concurrent bulk enqueues (100 jobs each)
hold their bodies, models, packed scripts and replies at once, and left alone the process keeps
10-15 MiB of freed heap after the burst. `TrimWhenIdleMiddleware` trims when the last request in
flight finishes and resident memory has grown since the last trim. A trim costs 1-3 ms, so it is
never paid per request: only on idle after growth, or once per TRIM_EVERY_REQUESTS while busy."""

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

TRIM_AFTER_GROWTH_BYTES = 2 * 1024 * 1024
"""Growth of resident memory since the last trim that makes going idle worth a trim."""

TRIM_EVERY_REQUESTS = 1024
"""Under load that never goes idle, how often (in finished requests) growth is checked anyway."""

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _malloc_trim() -> Callable[[int], int] | None:
    """None where the C library is not glibc (musl, macOS): they have no `malloc_trim`."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    trim: Callable[[int], int] | None = getattr(ctypes.CDLL(name), "malloc_trim", None)
    return trim


_TRIM = _malloc_trim()


def return_freed_memory() -> None:
    if _TRIM is not None:
        _TRIM(0)


def resident_bytes() -> int:
    """This process's resident set; 0 where /proc is not there (nothing is trimmed then)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_BYTES
    except OSError:
        return 0


class TrimWhenIdleMiddleware:
    """Pure ASGI, outermost: counts HTTP requests in flight across the whole app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.in_flight = 0
        self.finished = 0
        self.trimmed_at = resident_bytes()
        self.trims = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _TRIM is None:
            await self.app(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.finished += 1
            if self.in_flight == 0 or self.finished % TRIM_EVERY_REQUESTS == 0:
                self._trim_if_grown()

    def _trim_if_grown(self) -> None:
        if resident_bytes() - self.trimmed_at < TRIM_AFTER_GROWTH_BYTES:
            return
        return_freed_memory()
        self.trims += 1
        self.trimmed_at = resident_bytes()
