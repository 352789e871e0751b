"""What a worker on a Redis Cluster does differently while idle and listening.

An idle worker blocks on its queues' marker sets (BZPOPMIN). On a cluster one blocking call may
only name keys of one slot, and each queue is its own slot, so the worker blocks on every marker
at once, one call each, and returns when the first wakes; the others are cancelled (redis-py then
drops those connections: a cancelled reply is never read by a later command).

Pub/sub: the asyncio cluster client has none, but a cluster relays every PUBLISH to all nodes,
so a plain connection to any one node hears the cancels cancel.lua publishes on any shard."""

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

T = TypeVar("T")

NODE_OPTIONS = ("username", "password", "ssl", "socket_timeout", "socket_connect_timeout")
"""The cluster's connection options a single-node client takes over."""


async def wait_on_markers(redis: RedisCluster, markers: list[str], timeout_s: float) -> None:
    """Returns once any marker is popped, or after `timeout_s`."""
    if len(markers) == 1:
        await redis.bzpopmin(markers, timeout_s)
        return
    await first_of([redis.bzpopmin([m], timeout_s) for m in markers])


async def first_of(calls: Sequence[Awaitable[T]]) -> list[T]:
    """The results of the calls that end first (all that ended together); the others are
    cancelled. A call's error is raised (a Redis error reaches the caller's own backoff)."""
    waits = [asyncio.ensure_future(c) for c in calls]
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        for w in waits:
            with contextlib.suppress(asyncio.CancelledError):
                await w
    return [w.result() for w in waits if w in done]


def node_client(redis: RedisCluster) -> Redis:
    """A plain client to one node of the cluster (the one the cluster client talks to first)."""
    node = redis.get_default_node()
    options: dict[str, Any] = {k: v for k, v in node.connection_kwargs.items() if k in NODE_OPTIONS}
    return Redis(host=node.host, port=int(node.port), **options)
