"""Loguru configuration: one call per process, JSON lines in production, stdlib records routed in."""

import logging
import sys
from types import FrameType
from typing import TYPE_CHECKING

from loguru import logger

if TYPE_CHECKING:
    from loguru import Record


class InterceptHandler(logging.Handler):
    """Sends stdlib records (uvicorn, arq, sqlalchemy) through loguru so every line has one format."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame: FrameType | None = logging.currentframe()
        depth = 2
        while frame is not None and frame.f_code.co_filename == logging.__file__:
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def _readable(record: "Record") -> str:
    """One line per record; bound context (job_id, queue, attempt, ...) trails as key=value."""
    context = " ".join(f"{k}={v}" for k, v in record["extra"].items() if k != "component")
    record["extra"]["_context"] = context
    return (
        "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
        "<cyan>{extra[component]}</cyan> {message} <dim>{extra[_context]}</dim>\n{exception}"
    )


def configure_logging(level: str = "INFO", *, json: bool = False, component: str = "app") -> None:
    """Replaces every sink, so calling it twice (tests, reloads) never duplicates lines."""
    logger.remove()
    logger.configure(extra={"component": component})
    if json:
        logger.add(sys.stderr, level=level, serialize=True, backtrace=False, diagnose=False)
    else:
        logger.add(sys.stderr, level=level, format=_readable, backtrace=False, diagnose=False)
    logging.basicConfig(handlers=[InterceptHandler()], level=0, force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "arq.worker"):
        std = logging.getLogger(name)
        std.handlers = []
        std.propagate = True
