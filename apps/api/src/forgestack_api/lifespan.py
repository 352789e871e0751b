"""Process-wide clients, created once when the app starts and closed once when it stops."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from arq.connections import ArqRedis, RedisSettings, create_pool
from fastapi import FastAPI, Request
from forgestack_queue.serializer import arq_job_deserializer, arq_job_serializer
from forgestack_shared.settings import Settings, get_settings
from loguru import logger
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .auth import Authenticator, admin_key_authenticator
from .queue_service import QueueService


@dataclass(slots=True)
class AppResources:
    """Everything a request may need; routes reach it through the dependencies in `deps.py`."""

    settings: Settings
    redis: ArqRedis
    engine: AsyncEngine
    queues: QueueService
    authenticators: list[Authenticator] = field(default_factory=list)


def create_engine(settings: Settings) -> AsyncEngine:
    """The database engine; for the SQLite dev default its folder must exist first."""
    if settings.database_url is None:
        settings.forgestack_data_dir.mkdir(parents=True, exist_ok=True)
    return create_async_engine(settings.effective_database_url, pool_pre_ping=True)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    # arq's own pool, with JSON on both sides: pickle from Redis would let any writer run code.
    redis = await create_pool(
        RedisSettings.from_dsn(settings.effective_redis_url),
        job_serializer=arq_job_serializer,
        job_deserializer=arq_job_deserializer,
    )
    engine = create_engine(settings)
    app.state.resources = AppResources(
        settings=settings,
        redis=redis,
        engine=engine,
        queues=QueueService(redis, prefix=settings.queue_prefix),
        authenticators=[admin_key_authenticator(settings)],
    )
    logger.info("api started (queue prefix {})", settings.queue_prefix)
    try:
        yield
    finally:
        await redis.aclose()
        await engine.dispose()
        logger.info("api stopped")


def resources_of(request: Request) -> AppResources:
    resources = getattr(request.app.state, "resources", None)
    if not isinstance(resources, AppResources):
        raise RuntimeError("app resources are not open: was the lifespan run?")
    return resources
