"""What a claim does with the record it finds behind each waiting id: a hash it starts, whatever
fields it lacks; a missing record it drops; a record of another type it quarantines (tested in
test_poison.py); a counter it cannot add to stops the claim, as HINCRBY does."""

import pytest
from forgestack_queue.claims import Claimer
from forgestack_queue.producer import Queue
from forgestack_queue.scripts import scripts_for
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tests.queue.probe import PROBE, ProbeData


def _claimer(redis: Redis, queue_prefix: str) -> Claimer:
    return Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000)


async def test_a_hash_lacking_every_field_the_claim_reads_is_started_and_a_missing_one_dropped(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    good, bare, missing = [(await queue.add(ProbeData(tag=t))).id for t in ("g", "b", "m")]
    await redis.delete(queue.keys.job(bare))
    await redis.hset(queue.keys.job(bare), "note", "written by hand")
    await redis.delete(queue.keys.job(missing))
    jobs, _, _ = await _claimer(redis, queue_prefix).claim(10)
    assert [j.id for j in jobs] == [good, bare]
    started = jobs[1]
    assert (started.attempt, started.defect, started.queue) == (
        1,
        "job record has no data field",
        PROBE,
    )
    record = {
        k.decode(): v.decode() for k, v in (await redis.hgetall(queue.keys.job(bare))).items()
    }
    # Field order too: the fields the claim adds come after the record's own, in this order.
    assert list(record) == ["note", "attempts_started", "state", "token", "queue", "hist"]
    assert record["attempts_started"] == "1" and record["state"] == "active"
    assert record["token"] == started.token and record["token"].endswith(":1")
    assert record["hist"] == "s1:0"
    assert jobs[0].attempt == 1 and jobs[0].defect is None
    active = await redis.zrange(queue.keys.active, 0, -1)
    assert sorted(active) == sorted([good.encode(), bare.encode()])
    assert await redis.exists(queue.keys.job(missing)) == 0
    assert await redis.zcard(queue.keys.wait) == 0


async def test_an_attempt_counter_that_is_not_an_integer_stops_the_claim(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="x"))
    await redis.hset(queue.keys.job(added.id), "attempts_started", "many")
    with pytest.raises(ResponseError, match="not an integer"):
        await _claimer(redis, queue_prefix).claim(10)


async def test_a_later_attempt_counts_on_from_the_stored_counter(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="x"))
    await redis.hset(queue.keys.job(added.id), "attempts_started", "41")
    jobs, _, _ = await _claimer(redis, queue_prefix).claim(10)
    assert [(j.id, j.attempt) for j in jobs] == [(added.id, 42)]
    assert jobs[0].token.endswith(":42")
    assert await redis.hget(queue.keys.job(added.id), "attempts_started") == b"42"


async def test_the_history_keeps_fifty_entries_however_short_they_are(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    """Counted by separators, not bytes: fifty empty entries (a history written by hand) plus the
    start make fifty-one, and the oldest goes."""
    added = await queue.add(ProbeData(tag="x"))
    key = queue.keys.job(added.id)
    await redis.hset(key, mapping={"hist": "|" * 49, "created_at": "0"})
    await _claimer(redis, queue_prefix).claim(1)
    hist = (await redis.hget(key, "hist")).decode()
    assert hist.startswith("|" * 49 + "s1:") and not hist.startswith("|" * 50)
