"""A claim moves each priority's fair clock to the highest tag it took at that priority, whether
one pop spans one priority or several (fair_claimed in the scripts' prelude)."""

from forgestack_queue.claims import Claimer
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.scripts import scripts_for
from redis.asyncio import Redis

from tests.queue.probe import PROBE, ProbeData


async def _clocks(redis: Redis, queue: Queue) -> dict[str, str]:
    fair = await redis.hgetall(queue.keys.fair)
    return {k.decode(): v.decode() for k, v in fair.items() if k.startswith(b"clock:")}


async def test_each_priority_a_claim_takes_from_moves_its_own_clock(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    for priority in (1, 2):
        for n in range(3):
            await queue.add(ProbeData(tag=f"{priority}.{n}"), JobOptions(priority=priority))
    claimer = Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000)
    assert await _clocks(redis, queue) == {"clock:1": "0", "clock:2": "0"}
    jobs, _, _ = await claimer.claim(2)
    assert len(jobs) == 2
    assert await _clocks(redis, queue) == {"clock:1": "2", "clock:2": "0"}
    jobs, _, _ = await claimer.claim(3)
    assert len(jobs) == 3
    assert await _clocks(redis, queue) == {"clock:1": "3", "clock:2": "2"}
