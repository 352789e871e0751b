"""Builds the async engine for either backend with the options each one needs."""

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

CONNECT_TIMEOUT_S = 10.0
"""asyncpg waits 60 s by default; an unreachable database should fail the attempt fast so the
job layer's backoff, not a hung socket, decides when to try again."""


def is_postgresql(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


def create_engine(url: str, *, pool_size: int = 5, echo: bool = False) -> AsyncEngine:
    """asyncpg for `postgresql+asyncpg://`, aiosqlite for `sqlite+aiosqlite://`."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    options: dict[str, Any] = {"echo": echo}
    if backend == "postgresql":
        if parsed.get_driver_name() != "asyncpg":
            raise ValueError(
                "PostgreSQL URLs must use asyncpg (postgresql+asyncpg://), got "
                f"{parsed.render_as_string(hide_password=True)!r}"
            )
        options |= {
            "pool_size": pool_size,
            "max_overflow": pool_size,
            # A connection killed by an outage is noticed before use, not by the next job.
            "pool_pre_ping": True,
            "connect_args": {"timeout": CONNECT_TIMEOUT_S},
        }
    elif backend == "sqlite":
        if parsed.get_driver_name() != "aiosqlite":
            raise ValueError(
                "SQLite URLs must use aiosqlite (sqlite+aiosqlite://), got "
                f"{parsed.render_as_string(hide_password=True)!r}"
            )
        options["connect_args"] = {"timeout": CONNECT_TIMEOUT_S}
        if parsed.database not in (None, "", ":memory:"):
            # The dev default lives under the data dir, which a fresh checkout does not have yet.
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    else:
        raise ValueError(f"unsupported database backend {backend!r}: use PostgreSQL or SQLite")
    engine = create_async_engine(parsed, **options)
    if backend == "sqlite":
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """SQLite ignores foreign keys unless told, and WAL lets the API read while the worker writes."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()
