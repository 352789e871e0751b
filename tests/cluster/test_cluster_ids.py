"""Ids on a Redis Cluster: lookup by id alone across shards, custom ids unique per (owner,
queue), an ambiguous id refused rather than guessed, and owners kept apart."""

from types import SimpleNamespace

import pytest
from forgestack_queue import producer
from forgestack_queue.errors import AmbiguousJobIdError
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue, find_job
from redis.asyncio.cluster import RedisCluster

from tests.queue.probe import ProbeData

ORG_A, ORG_B = "org-a", "org-b"


async def test_find_job_by_id_alone_reads_every_shard(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str
) -> None:
    ids = {}
    for q in spread_queues:
        ids[q] = (await Queue(cluster, q, prefix=queue_prefix).add(ProbeData(tag=q))).id
    for q, job_id in ids.items():
        record = await find_job(cluster, job_id, prefix=queue_prefix)
        assert record is not None and record.queue == q and record.id == job_id
    assert await find_job(cluster, "nope", prefix=queue_prefix) is None
    # A queue the caller names but the set of names lacks is looked in too.
    await cluster.srem(f"{queue_prefix}:queues", spread_queues[0])  # type: ignore[misc]
    assert await find_job(cluster, ids[spread_queues[0]], prefix=queue_prefix) is None
    found = await find_job(
        cluster, ids[spread_queues[0]], prefix=queue_prefix, queues=[spread_queues[0]]
    )
    assert found is not None and found.queue == spread_queues[0]


async def test_custom_ids_are_idempotent_per_queue_and_ambiguous_across_queues(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str
) -> None:
    a, b = (Queue(cluster, q, prefix=queue_prefix) for q in spread_queues[:2])
    first = await a.add(ProbeData(tag="one"), JobOptions(job_id="order-7"))
    again = await a.add(ProbeData(tag="two"), JobOptions(job_id="order-7"))
    assert first.created and not again.created and again.id == "order-7"
    other = await b.add(ProbeData(tag="three"), JobOptions(job_id="order-7"))
    assert other.created  # per (owner, queue): no atomic check across shards
    with pytest.raises(AmbiguousJobIdError) as caught:
        await find_job(cluster, "order-7", prefix=queue_prefix)
    assert sorted(caught.value.queues) == sorted(spread_queues[:2])
    record = await a.get_job("order-7")
    assert record is not None and record.data == {"tag": "one", "mode": "ok", "seconds": 0.0}


async def test_another_owners_job_is_unreachable(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str
) -> None:
    q = spread_queues[0]
    mine = Queue(cluster, q, prefix=queue_prefix, owner=ORG_A)
    theirs = Queue(cluster, q, prefix=queue_prefix, owner=ORG_B)
    job = await theirs.add(ProbeData(tag="b"), JobOptions(job_id="shared"))
    assert (await mine.add(ProbeData(tag="a"), JobOptions(job_id="shared"))).created
    assert (await mine.get_job("shared")).data["tag"] == "a"  # type: ignore[union-attr]
    assert await find_job(cluster, job.id, prefix=queue_prefix, owner=ORG_A) is not None
    assert await find_job(cluster, f"{ORG_B}~shared", prefix=queue_prefix, owner=ORG_A) is None
    assert (await find_job(cluster, "shared", prefix=queue_prefix, owner=ORG_B)).data["tag"] == "b"  # type: ignore[union-attr]
    page = await mine.get_jobs(next(iter(await mine.counts())))
    assert [j.id for j in page.jobs] == ["shared"]


async def test_braces_in_names_are_refused(cluster: RedisCluster, queue_prefix: str) -> None:
    with pytest.raises(ValueError, match="no ':', '\\{' or '\\}'"):
        Queue(cluster, "bad{tag}", prefix=queue_prefix)
    with pytest.raises(ValueError, match="key prefix"):
        Queue(cluster, "fine", prefix="fs{x}")


async def test_a_deleted_set_of_queue_names_gets_the_name_back_within_the_refresh_bound(
    cluster: RedisCluster,
    spread_queues: list[str],
    queue_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1_000.0]
    monkeypatch.setattr(producer, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    q = spread_queues[0]
    names = f"{queue_prefix}:queues"
    queue = Queue(cluster, q, prefix=queue_prefix)
    await queue.add(ProbeData(tag="one"))
    assert await cluster.sismember(names, q)  # type: ignore[misc]
    await cluster.delete(names)
    clock[0] += producer.NAME_REFRESH_S - 1
    await queue.add(ProbeData(tag="two"))
    assert not await cluster.sismember(names, q)  # type: ignore[misc]  # within the bound
    clock[0] += 1
    job = await queue.add(ProbeData(tag="three"))
    assert await cluster.sismember(names, q)  # type: ignore[misc]
    found = await find_job(cluster, job.id, prefix=queue_prefix)
    assert found is not None and found.queue == q
