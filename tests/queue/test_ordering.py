"""Issue 14 points 7 and 8: FIFO survives the old 32-bit sequence wrap (run order now comes from
the fair order's tags, which must not wrap there either); delayed jobs due in one millisecond are
promoted in the order they were added."""

import asyncio

from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker

from tests.queue.probe import Probe, ProbeData


async def test_fifo_holds_across_the_old_32_bit_sequence_wrap(
    queue: Queue, probe: Probe, redis_url: str
) -> None:
    await queue.redis.hset(queue.keys.fair, mapping={"last:0": 2**32 - 3, "last:1": 2**32 - 3})
    for i in range(6):
        await queue.add(ProbeData(tag=str(i)), JobOptions(priority=1))
        await queue.add(ProbeData(tag=f"n{i}"))
    page = await queue.get_jobs(JobState.WAITING, limit=20)
    assert [j.data["tag"] for j in page.jobs] == [f"n{i}" for i in range(6)] + [
        str(i) for i in range(6)
    ]
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue.prefix, max_jobs=1)
    assert probe.tags() == [f"n{i}" for i in range(6)] + [str(i) for i in range(6)]


async def test_delayed_jobs_due_in_one_millisecond_run_in_the_order_added(
    queue: Queue, probe: Probe, redis_url: str
) -> None:
    tags = [f"d{i:02d}" for i in range(40)]
    await queue.add_bulk([(ProbeData(tag=t), JobOptions(delay=100)) for t in tags])
    due = await queue.redis.zrange(queue.keys.delayed, 0, -1, withscores=True)
    assert len({score for _, score in due}) == 1
    await asyncio.sleep(0.15)
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue.prefix, max_jobs=1)
    assert probe.tags() == tags
