"""How a worker hears that an operator cancelled one of its running jobs: a pub/sub channel of
its own (cancel.lua publishes to the worker whose id heads the job's claim token).

Why pub/sub: a cancel reaches the handler in milliseconds with no per-job polling, and costs
nothing on the claim or finish path. Pub/sub is at most once, so a message sent while this
connection is down is lost; the job's `cancel` flag then reaches the worker on its next lease
renewal (a third of the lease), which extend.lua reports."""

import asyncio
import contextlib
from collections.abc import Callable

from loguru import logger
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from .keys import worker_channel_prefix

LISTEN_TIMEOUT_S = 5.0


class CancelListener:
    def __init__(
        self, redis: Redis, prefix: str, worker_id: str, on_cancel: Callable[[str], None]
    ) -> None:
        self._redis = redis
        self.channel = f"{worker_channel_prefix(prefix)}{worker_id}:cancel"
        self._on_cancel = on_cancel
        self._pubsub: PubSub | None = None

    async def subscribe(self) -> None:
        """Before the first claim, so a job cancelled just after it is claimed is heard."""
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.channel)

    async def run(self) -> None:
        pause = 0.1
        try:
            while True:
                try:
                    if self._pubsub is None:
                        await self.subscribe()
                    assert self._pubsub is not None
                    message = await self._pubsub.get_message(timeout=LISTEN_TIMEOUT_S)
                    pause = 0.1
                except (RedisError, OSError) as exc:
                    logger.warning("cancel channel lost ({}); resubscribing", type(exc).__name__)
                    await self._close()
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 5.0)
                    continue
                if message is not None and message["type"] == "message":
                    self._on_cancel(message["data"].decode("utf-8", "replace"))
        finally:
            await self._close()

    async def _close(self) -> None:
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
