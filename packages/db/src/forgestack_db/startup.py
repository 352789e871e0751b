"""How the API and the worker open the database: guarded before anything else uses it."""

import asyncio

from loguru import logger
from sqlalchemy.exc import DBAPIError

from .database import Database
from .guard import GuardSettings, UnsafeDatabaseRoleError, check_app_role


async def open_database(url: str, settings: GuardSettings, *, pool_size: int = 5) -> Database:
    """Raises `UnsafeDatabaseRoleError` when the login would bypass row-level security.

    A database that is down at startup does not stop the process (readiness reports it, the job
    layer retries); the guard then checks each connection as it opens, before any query runs."""
    db = Database.from_url(url, pool_size=pool_size)
    try:
        await check_app_role(db.engine, settings)
    except UnsafeDatabaseRoleError:
        await db.dispose()
        raise
    except (OSError, TimeoutError, DBAPIError) as exc:
        logger.warning(
            "database unreachable at startup ({}: {}); the role is checked on first connection",
            type(exc).__name__,
            exc,
        )
    return db


def check_database_login(url: str, settings: GuardSettings) -> None:
    """The guard once, before a process starts serving, so an unsafe login stops it with the
    guard's message rather than a traceback from inside uvicorn or arq. Raises
    `UnsafeDatabaseRoleError`; a database that is down passes (see `open_database`)."""

    async def check() -> None:
        db = await open_database(url, settings, pool_size=1)
        await db.dispose()

    asyncio.run(check())
