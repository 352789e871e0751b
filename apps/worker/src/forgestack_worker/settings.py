"""The worker's startup and shutdown hooks, named in `worker.WorkerSettings`.

on_startup runs beside the worker's first claims (ForgeWorker starts claiming at once; what it
claims waits for on_startup to return before its handler runs), so opening the clients and
checking the database login cost a start nothing but the jobs' own wait."""

from typing import Any

from forgestack_shared.logging import configure_logging
from forgestack_shared.settings import get_settings
from forgestack_shared.startup import StartupError, exit_on_startup_error, unsafe_database_login

from .resources import RESOURCES_KEY, close_resources, open_resources

REFUSAL_KEY = "forgestack_startup_refusal"


async def on_startup(ctx: dict[str, Any]) -> None:
    """An unsafe database login stops the worker with the guard's one line and exit code 2, as a
    bad setting does: no handler has run (they wait for this), and the jobs claimed meanwhile are
    released unspent as the worker stops."""
    settings = get_settings()
    # Again after arq's CLI configured its own logging, so arq's lines go through loguru once.
    configure_logging(settings.log_level, json=settings.log_json, component="worker")
    try:
        ctx[RESOURCES_KEY] = await open_resources(settings)
    except Exception as exc:
        # Imported with the resources (forgestack_worker.resources), not with this module.
        from forgestack_db.guard import UnsafeDatabaseRoleError

        if not isinstance(exc, UnsafeDatabaseRoleError):
            raise
        # Raised to stop the worker; said (and exited on) by on_shutdown, the last thing the
        # worker does, so the refusal is the last line, after the release of what was claimed.
        ctx[REFUSAL_KEY] = refusal = unsafe_database_login(exc)
        raise refusal from exc


async def on_shutdown(ctx: dict[str, Any]) -> None:
    res = ctx.pop(RESOURCES_KEY, None)
    if res is not None:
        await close_resources(res)
    refusal = ctx.pop(REFUSAL_KEY, None)
    if isinstance(refusal, StartupError):
        with exit_on_startup_error("worker"):
            raise refusal
