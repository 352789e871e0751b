"""The worker's startup and shutdown hooks, named in `worker.WorkerSettings`."""

from typing import Any

from forgestack_shared.logging import configure_logging
from forgestack_shared.settings import get_settings

from .resources import RESOURCES_KEY, close_resources, open_resources


async def on_startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    # Again after arq's CLI configured its own logging, so arq's lines go through loguru once.
    configure_logging(settings.log_level, json=settings.log_json, component="worker")
    ctx[RESOURCES_KEY] = await open_resources(settings)


async def on_shutdown(ctx: dict[str, Any]) -> None:
    res = ctx.pop(RESOURCES_KEY, None)
    if res is not None:
        await close_resources(res)
