"""Redis clients that do not need Redis to be up yet. arq's `create_pool` pings and gives up after
a few retries, so a worker or API started before Redis would exit; a fleet restarted in any order
must instead come up by itself once Redis answers."""

import asyncio
import functools
from typing import Any, cast

from arq.connections import ArqRedis, RedisSettings
from loguru import logger
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisClusterException, RedisError

from .serializer import arq_job_deserializer, arq_job_serializer

FIRST_PAUSE_S = 0.5
MAX_PAUSE_S = 5.0


def redis_client(settings: RedisSettings, redis_class: type[ArqRedis] = ArqRedis) -> ArqRedis:
    """The client arq's `create_pool` builds (direct or through Sentinel, JSON job serializer),
    without its ping: connections open on first use. `redis_class`: an ArqRedis subclass, such
    as arq_pool.ForgeArqRedis."""
    kwargs: dict[str, Any] = {
        "db": settings.database,
        "username": settings.username,
        "password": settings.password,
        "encoding": "utf8",
    }
    if settings.sentinel:
        sentinel = Sentinel(sentinels=settings.host, ssl=settings.ssl, **kwargs)  # type: ignore[no-untyped-call]
        client = cast(
            ArqRedis, sentinel.master_for(settings.sentinel_master, redis_class=redis_class)
        )
    else:
        client = functools.partial(
            redis_class,
            host=settings.host,
            port=settings.port,
            unix_socket_path=settings.unix_socket_path,
            socket_connect_timeout=settings.conn_timeout,
            ssl=settings.ssl,
            ssl_keyfile=settings.ssl_keyfile,
            ssl_certfile=settings.ssl_certfile,
            ssl_cert_reqs=settings.ssl_cert_reqs,
            ssl_ca_certs=settings.ssl_ca_certs,
            ssl_ca_data=settings.ssl_ca_data,
            ssl_check_hostname=settings.ssl_check_hostname,
            retry=settings.retry,
            retry_on_timeout=settings.retry_on_timeout,
            retry_on_error=settings.retry_on_error,
            max_connections=settings.max_connections,
        )(**kwargs)
    client.job_serializer = arq_job_serializer
    client.job_deserializer = arq_job_deserializer
    return client


async def wait_for_redis(redis: ArqRedis | RedisCluster, component: str) -> None:
    """Returns once Redis answers a PING; meanwhile one log line per try, the pause doubling up
    to MAX_PAUSE_S."""
    pause = FIRST_PAUSE_S
    waited = False
    while True:
        try:
            await redis.ping()
        except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
            logger.warning(
                "{}: waiting for Redis ({}); next try in {:.1f} s",
                component,
                type(exc).__name__,
                pause,
            )
            waited = True
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE_S)
            continue
        if waited:
            logger.info("{}: Redis answers", component)
        return


def cluster_client(url: str) -> RedisCluster:
    """A Redis Cluster client from one startup node's URL (redis:// or rediss://): it learns
    the other nodes from that one. No connection is made until first use."""
    client: RedisCluster = RedisCluster.from_url(url)
    return client


def cluster_client_for(settings: RedisSettings) -> RedisCluster:
    """`cluster_client` from arq's settings (as the worker app parses REDIS_URL): that address
    is the startup node. A cluster has database 0 only."""
    if settings.sentinel or settings.unix_socket_path or settings.database:
        raise ValueError("a Redis Cluster is reached by one node's host and port, database 0")
    client: RedisCluster = RedisCluster(
        host=settings.host if isinstance(settings.host, str) else settings.host[0][0],
        port=settings.port,
        username=settings.username,
        password=settings.password,
        ssl=settings.ssl,
        socket_connect_timeout=settings.conn_timeout,
    )
    return client
