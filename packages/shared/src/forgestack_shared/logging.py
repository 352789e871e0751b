"""Loguru configuration: one call per process, JSON lines in production, stdlib records routed in."""

import logging
import sys
from types import FrameType

from loguru import logger


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


_FORMAT = (
    "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[component]}</cyan> {message}"
    " <dim>{extra}</dim>"
)


def configure_logging(level: str = "INFO", *, json: bool = False, component: str = "app") -> None:
    """Replaces every sink, so calling it twice (tests, reloads) never duplicates lines."""
    logger.remove()
    logger.configure(extra={"component": component})
    if json:
        logger.add(sys.stderr, level=level, serialize=True, backtrace=False, diagnose=False)
    else:
        logger.add(sys.stderr, level=level, format=_FORMAT, backtrace=False, diagnose=False)
    logging.basicConfig(handlers=[InterceptHandler()], level=0, force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "arq.worker"):
        std = logging.getLogger(name)
        std.handlers = []
        std.propagate = True
