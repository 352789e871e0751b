"""WorkerSettings for arq's CLI, built from process settings by the `worker` entry module."""

from typing import Any

from forgestack_queue.serializer import arq_job_deserializer, arq_job_serializer
from forgestack_shared.logging import configure_logging
from forgestack_shared.redis_url import parse_redis_url
from forgestack_shared.settings import Settings, get_settings

from .cron import CRON_JOBS
from .registry import HANDLERS
from .resources import RESOURCES_KEY, close_resources, open_resources


async def on_startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json, component="worker")
    ctx[RESOURCES_KEY] = await open_resources(settings)


async def on_shutdown(ctx: dict[str, Any]) -> None:
    res = ctx.pop(RESOURCES_KEY, None)
    if res is not None:
        await close_resources(res)


def build_worker_settings(settings: Settings) -> type:
    """A class, as arq's CLI expects; attributes named like `ForgeWorker`'s parameters."""
    configure_logging(settings.log_level, json=settings.log_json, component="worker")
    return type(
        "WorkerSettings",
        (),
        {
            "handlers": HANDLERS,
            "cron_jobs": CRON_JOBS or None,
            "redis_settings": parse_redis_url(settings.effective_redis_url),
            "queue_prefix": settings.queue_prefix,
            "max_jobs": settings.worker_concurrency,
            "heartbeat_ms": settings.worker_heartbeat_ms,
            "events_max_len": settings.events_max_len,
            "on_startup": on_startup,
            "on_shutdown": on_shutdown,
            "job_serializer": arq_job_serializer,
            "job_deserializer": arq_job_deserializer,
            "health_check_key": f"{settings.queue_prefix}:worker:health",
            "health_check_interval": 10,
            "job_completion_wait": settings.worker_shutdown_grace_s,
        },
    )
