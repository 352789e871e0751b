"""Each event's fields exactly as the scripts write them, order included: readers (waiters, the
dashboard, outside consumers) see the stream raw, so a change in how the scripts build an entry
must not show in it."""

from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.testing import run_burst_worker
from redis.asyncio import Redis

from tests.queue.probe import PROBE, Probe, ProbeData


async def _fields(redis: Redis, queue: Queue, full_id: str) -> list[list[str]]:
    """Each of the job's entries as its field names and values in stream order, the
    variable ones (result, reason) cut to their name."""
    rows = []
    for _, fields in await redis.xrange(queue.keys.events):
        row = [(k.decode(), v.decode()) for k, v in fields.items()]
        if dict(row)["j"] != full_id:
            continue
        rows.append([x for k, v in row for x in ((k,) if k in ("v", "r") else (k, v))])
    return rows


async def test_owned_and_unowned_jobs_emit_the_same_fields_in_the_same_order(
    redis: Redis, queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    acme = Queue(redis, PROBE, prefix=queue_prefix, owner="acme")
    kept = await queue.add(ProbeData(tag="kept"))
    gone = await acme.add(ProbeData(tag="gone"), JobOptions(remove_on_complete=True))
    failed = await acme.add(ProbeData(tag="failed", mode="fail"))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert await _fields(redis, queue, kept.id) == [
        ["e", "added", "j", kept.id, "n", "probe"],
        ["e", "active", "j", kept.id, "a", "1"],
        ["e", "completed", "j", kept.id, "a", "1"],
    ]
    full = f"acme~{gone.id}"
    assert await _fields(redis, queue, full) == [
        ["e", "added", "j", full, "o", "acme", "n", "probe"],
        ["e", "active", "j", full, "o", "acme", "a", "1"],
        ["e", "completed", "j", full, "o", "acme", "a", "1", "v"],
        ["e", "removed", "j", full, "o", "acme"],
    ]
    full = f"acme~{failed.id}"
    assert await _fields(redis, queue, full) == [
        ["e", "added", "j", full, "o", "acme", "n", "probe"],
        ["e", "active", "j", full, "o", "acme", "a", "1"],
        ["e", "failed", "j", full, "o", "acme", "a", "1", "r"],
    ]
