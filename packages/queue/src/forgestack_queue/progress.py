"""What a running handler reports about itself: progress and log lines (`Job.update_progress`,
`Job.log`), stored with the job and emitted as events by one script call each.

Reporting is best effort and bounded: it never fails the job, and a slow or unreachable Redis holds
the handler at most REPORT_TIMEOUT_S per call, after which the report is dropped with a warning."""

import asyncio
import json
from typing import Any, Protocol

from loguru import logger
from redis.exceptions import RedisError

from .keys import QueueKeys
from .scripts import Scripts

REPORT_TIMEOUT_S = 1.0
MAX_LOG_LINES = 100
"""Lines kept per job: the newest; older ones are dropped as new ones arrive."""
MAX_LOG_LINE = 2_000
"""Characters kept of one line, so a runaway message cannot bloat Redis."""
MAX_PROGRESS_BYTES = 4_096


class Reporter(Protocol):
    async def progress(self, value: int | float | dict[str, Any]) -> bool: ...

    async def log(self, line: str) -> bool: ...


def progress_json(value: int | float | dict[str, Any]) -> str:
    """A number or a JSON object, bounded: bad input is the caller's bug, so it raises."""
    if isinstance(value, bool) or not isinstance(value, int | float | dict):
        raise TypeError(f"progress is a number or a dict, not {type(value).__name__}")
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    if len(text) > MAX_PROGRESS_BYTES:
        raise ValueError(
            f"progress is {len(text)} bytes of JSON; the limit is {MAX_PROGRESS_BYTES}"
        )
    return text


class RedisReporter:
    """One attempt's reports; fenced by its claim token like the attempt's outcome."""

    def __init__(self, scripts: Scripts, keys: QueueKeys, job_id: str, token: str) -> None:
        self._scripts = scripts
        self._keys = keys
        self._id = job_id
        self._token = token

    async def progress(self, value: int | float | dict[str, Any]) -> bool:
        return await self._send("progress", progress_json(value))

    async def log(self, line: str) -> bool:
        text = line[:MAX_LOG_LINE].encode("utf-8", "backslashreplace").decode("utf-8")
        return await self._send("log", text)

    async def _send(self, kind: str, value: str) -> bool:
        try:
            async with asyncio.timeout(REPORT_TIMEOUT_S):
                written = await self._scripts.report(
                    keys=[self._keys.job(self._id), self._keys.logs(self._id)],
                    args=[self._keys.base, self._id, self._token, kind, value, MAX_LOG_LINES],
                )
        except (TimeoutError, RedisError) as exc:
            logger.bind(job_id=self._id, queue=self._keys.queue).warning(
                "job {} not recorded ({}): the job goes on", kind, type(exc).__name__
            )
            return False
        return bool(written)


class RecordingReporter:
    """Keeps reports in memory: what `testing.make_job` gives a handler under unit test."""

    def __init__(self) -> None:
        self.last_progress: int | float | dict[str, Any] | None = None
        self.lines: list[str] = []

    async def progress(self, value: int | float | dict[str, Any]) -> bool:
        progress_json(value)
        self.last_progress = value
        return True

    async def log(self, line: str) -> bool:
        self.lines = [*self.lines, line[:MAX_LOG_LINE]][-MAX_LOG_LINES:]
        return True
