"""Loguru configuration: one call per process, flat JSON lines in production, stdlib records routed in."""

import json
import logging
import sys
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from loguru import Message, Record

_STDLIB_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "arq.worker")
_HIDDEN_EXTRA = frozenset({"component", "logger", "_context"})


class InterceptHandler(logging.Handler):
    """Sends stdlib records (uvicorn, arq, sqlalchemy) through loguru so every line has one format.

    The record keeps its own origin (logger name, module, function, line): walking frames to
    find the caller lands in `logging:callHandlers` when a library logs through a helper."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno

        def origin(rec: "Record") -> None:
            rec["name"] = record.name
            rec["module"] = record.module
            rec["function"] = record.funcName
            rec["line"] = record.lineno

        logger.patch(origin).bind(logger=record.name).opt(exception=record.exc_info).log(
            level, record.getMessage()
        )


def _readable(record: "Record") -> str:
    """One line per record; bound context (job_id, queue, attempt, ...) trails as key=value."""
    context = " ".join(f"{k}={v}" for k, v in record["extra"].items() if k not in _HIDDEN_EXTRA)
    record["extra"]["_context"] = context
    return (
        "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
        "<cyan>{extra[component]}</cyan> {message} <dim>{extra[_context]}</dim>\n{exception}"
    )


def flat_json(record: "Record") -> dict[str, Any]:
    """A log shipper's line: fixed keys first, then the bound context (job_id, queue, attempt,
    request_id, trace_id, ...) at the top level, so a query on one field needs no nesting."""
    extra = record["extra"]
    line: dict[str, Any] = {
        "time": record["time"].isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "message": record["message"],
        "logger": extra.get("logger") or record["name"],
        "component": extra.get("component"),
    }
    line.update((k, v) for k, v in extra.items() if k not in _HIDDEN_EXTRA)
    exception = record["exception"]
    if exception is not None and exception.type is not None:
        line["exception"] = f"{exception.type.__name__}: {exception.value}"
    return line


def _json_sink(message: "Message") -> None:
    # Looked up per line, so a test's captured stderr (or a reassigned one) gets the lines.
    sys.stderr.write(json.dumps(flat_json(message.record), default=str) + "\n")


def configure_logging(level: str = "INFO", *, json: bool = False, component: str = "app") -> None:
    """Replaces every sink, so calling it twice (tests, reloads) never duplicates lines."""
    logger.remove()
    logger.configure(extra={"component": component})
    if json:
        logger.add(_json_sink, level=level, backtrace=False, diagnose=False)
    else:
        logger.add(sys.stderr, level=level, format=_readable, backtrace=False, diagnose=False)
    # The root's level is the configured one, not 0: uvicorn turns on its per-message TRACE
    # logging when its logger's effective level is at or below TRACE.
    logging.basicConfig(handlers=[InterceptHandler()], level=logger.level(level).no, force=True)
    for name in _STDLIB_LOGGERS:
        std = logging.getLogger(name)
        std.handlers = []
        std.propagate = True
        std.setLevel(logging.NOTSET)
    # uvicorn formats each access line's arguments whenever its access logger has a handler, before
    # any level check: with INFO lines not shown, the logger gets none and uvicorn skips the work.
    logging.getLogger("uvicorn.access").propagate = logger.level(level).no <= logging.INFO
