"""The live worker list survives a record it cannot read (a rolling upgrade mixes versions)."""

from forgestack_queue.workers import live_workers, registry_key, worker_key
from redis.asyncio import Redis


async def test_an_unreadable_worker_record_is_left_out_not_an_error(
    redis: Redis, queue_prefix: str
) -> None:
    await redis.zadd(registry_key(queue_prefix), {"odd": 1})
    await redis.set(
        worker_key(queue_prefix, "odd"), b'{"id": "odd", "from": "the future"}', px=60_000
    )
    assert await live_workers(redis, queue_prefix) == []
