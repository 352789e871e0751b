"""finish.lua over a batch of outcomes: the claim that finish and fetch next runs after it sees
the slots the batch freed, and a batch stopped half-way by a bad row keeps what it recorded."""

import json

import pytest
from forgestack_queue.claims import Claimer
from forgestack_queue.events import EVENT_RESULT_MAX_BYTES
from forgestack_queue.keys import queue_key_prefix
from forgestack_queue.limits import QueueLimits
from forgestack_queue.producer import Queue
from forgestack_queue.runner import ClaimedJob
from forgestack_queue.scripts import scripts_for
from redis.asyncio import Redis
from redis.exceptions import ResponseError

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


async def test_a_finish_stopped_half_way_leaves_the_jobs_it_recorded_finished(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    for n in range(2):
        await queue.add(ProbeData(tag=str(n)))
    claimer = Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000)
    jobs, _, _ = await claimer.claim(2)
    args = _finish_args(queue, jobs, -1)
    rows = json.loads(str(args[2]))
    rows[1] = rows[1][:8]  # a retry row without its delay: the script stops at it
    rows[1][3] = "retry"
    args[2] = json.dumps(rows)
    with pytest.raises(ResponseError):
        await scripts_for(redis).finish(args=args)
    done = jobs[0].id
    assert await redis.hget(queue.keys.job(done), "state") == b"completed"
    assert await redis.zscore(queue.keys.completed, done) is not None
    assert await redis.zscore(queue.keys.active, done) is None
