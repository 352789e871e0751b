"""finish.lua writes a batch's moves out of the active sets and into the finished ones once per
set: the claim that finish and fetch next runs after it must already see the freed slots, and a
batch larger than one command's arguments is still recorded whole."""

import json

from forgestack_queue.claims import Claimer
from forgestack_queue.events import EVENT_RESULT_MAX_BYTES
from forgestack_queue.keys import queue_key_prefix
from forgestack_queue.limits import QueueLimits
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.runner import ClaimedJob
from forgestack_queue.scripts import scripts_for
from redis.asyncio import Redis

from tests.queue.owner_index import assert_indexes_agree
from tests.queue.probe import PROBE, ProbeData


def _finish_args(queue: Queue, jobs: list[ClaimedJob], keep: int) -> list[object]:
    rows = [[j.queue, j.id, j.token, "completed", "null", "", keep, -1, 0, 0] for j in jobs]
    return [
        queue.keys.job_prefix,
        queue_key_prefix(queue.prefix),
        json.dumps(rows),
        EVENT_RESULT_MAX_BYTES,
    ]


async def test_a_capped_queue_hands_the_slots_a_finish_frees_to_the_claim_in_that_call(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    ids = [(await queue.add(ProbeData(tag=str(n)))).id for n in range(4)]
    limits = {PROBE: QueueLimits(concurrency=2)}
    claimer = Claimer(
        scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000, limits=limits
    )
    first, _, _ = await claimer.claim(4)
    assert [j.id for j in first] == ids[:2]
    kept, fetched = await claimer.finish_and_claim(_finish_args(queue, first, -1), 2)
    assert kept == [1, 1]
    assert [j.id for j in fetched] == ids[2:]
    assert sorted(await redis.zrange(queue.keys.active, 0, -1)) == sorted(
        i.encode() for i in ids[2:]
    )


async def test_one_call_records_more_outcomes_than_one_command_can_carry(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    acme = Queue(redis, PROBE, prefix=queue_prefix, owner="acme")
    n = 4_100
    for start in range(0, n, 1000):
        await acme.add_bulk(
            [(ProbeData(tag=str(i)), JobOptions()) for i in range(start, min(n, start + 1000))]
        )
    claimer = Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000)
    jobs, _, _ = await claimer.claim(n)
    assert len(jobs) == n
    kept = await scripts_for(redis).finish(args=_finish_args(queue, jobs, -1))
    assert kept == [1] * n
    assert await redis.zcard(queue.keys.active) == 0
    assert await redis.zcard(queue.keys.completed) == n
    await assert_indexes_agree(redis, queue.keys)
