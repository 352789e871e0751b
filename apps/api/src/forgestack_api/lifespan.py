"""Process-wide clients, created once when the app starts and closed once when it stops."""

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from fastapi import FastAPI, Request
from forgestack_db.lean_keys import lean_dsn
from forgestack_queue.arq_pool import ForgeArqRedis
from forgestack_queue.connect import cluster_client_for, redis_client, wait_for_redis
from forgestack_shared.catalog import CATALOG
from forgestack_shared.redis_url import parse_redis_url
from forgestack_shared.settings import Settings, get_settings
from loguru import logger

from .api_keys import ApiKeyAuthenticator
from .auth import Authenticator, admin_key_authenticator
from .key_lookup import KeyLookup, open_key_lookup
from .lazy_database import LazyDatabase
from .memory import return_freed_memory
from .queue_service import QueueService
from .script_pipelining import ScriptPipeliningRedis

if TYPE_CHECKING:
    from forgestack_db.database import Database


@dataclass(slots=True)
class AppResources:
    """Everything a request may need; routes reach it through the dependencies in `deps.py`."""

    settings: Settings
    redis: ForgeArqRedis
    queues: QueueService
    database: LazyDatabase
    """The engine, made on first use: see `lazy_database`."""
    keys: KeyLookup
    api_keys: ApiKeyAuthenticator
    """Also in `authenticators`; here so a revocation can make this process forget the key."""
    authenticators: list[Authenticator] = field(default_factory=list)

    @property
    def db(self) -> "Database":
        return self.database.get()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    # First, so an unsafe database login (superuser, BYPASSRLS, owner) stops the app before anything.
    database = await _open_database(settings)
    keys = await open_key_lookup(settings.effective_database_url, settings, database)
    # arq's pool class whose enqueue_job is our atomic, catalog-checked add, with JSON on both
    # sides (pickle from Redis would let any writer run code), opened without waiting for Redis:
    # until it answers, /readyz says 503 and one line a try says the API is waiting, instead of
    # the process exiting.
    if settings.redis_cluster:
        # The job layer speaks to a cluster through redis-py's cluster client (tagged key
        # layout); arq's pool and its enqueue_job have no cluster form, so nothing here uses
        # them: routes go through QueueService, which takes either client.
        logger.info("Redis Cluster: startup node from REDIS_URL; arq's own pool is not used")
        redis = cast(
            ForgeArqRedis, cluster_client_for(parse_redis_url(settings.effective_redis_url))
        )
    else:
        redis = cast(
            ForgeArqRedis,
            redis_client(parse_redis_url(settings.effective_redis_url), ScriptPipeliningRedis),
        )
        redis.configure(queue_prefix=settings.queue_prefix, contracts=CATALOG)
    waiting = asyncio.create_task(wait_for_redis(redis, "api"))
    api_keys = ApiKeyAuthenticator(
        keys,
        outage_grace_s=settings.api_key_outage_grace_s,
        cache_ttl_s=settings.api_key_cache_ttl_s,
    )
    app.state.resources = AppResources(
        settings=settings,
        redis=redis,
        queues=QueueService(redis, prefix=settings.queue_prefix),
        database=database,
        keys=keys,
        api_keys=api_keys,
        authenticators=[admin_key_authenticator(settings), api_keys],
    )
    # What start-up made (modules, the app and its routes, clients) lives as long as the process:
    # frozen, the collector stops scanning it on every full pass under load.
    gc.freeze()
    return_freed_memory()
    logger.info("api started (queue prefix {})", settings.queue_prefix)
    try:
        yield
    finally:
        waiting.cancel()
        await redis.aclose()
        await keys.close()
        await database.dispose()
        logger.info("api stopped")


async def _open_database(settings: Settings) -> LazyDatabase:
    """The engine now (guarded, as before) unless keys take the lean door: then on first use."""
    url = settings.effective_database_url
    if lean_dsn(url) is not None:
        return LazyDatabase(url, settings)
    from forgestack_db.startup import open_database

    return LazyDatabase(url, settings, await open_database(url, settings))


def resources_of(request: Request) -> AppResources:
    resources = getattr(request.app.state, "resources", None)
    if not isinstance(resources, AppResources):
        raise RuntimeError("app resources are not open: was the lifespan run?")
    return resources
