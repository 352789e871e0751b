"""The prefetch buffer on a Redis Cluster: outcome writes go per queue (a batch of several
queues' outcomes claims nothing), buffered jobs of every shard run once, and a stop releases
them to waiting, attempts not spent."""

import asyncio

import pytest
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, run_burst_worker, running
from redis.asyncio.cluster import RedisCluster

from tests.cluster.test_cluster_core import handlers
from tests.queue.probe import Probe, ProbeData


@pytest.mark.usefixtures("full_buffer")
async def test_buffered_jobs_of_every_shard_run_once(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str, cluster_url: str
) -> None:
    probe = Probe()
    queues = [Queue(cluster, q, prefix=queue_prefix) for q in spread_queues]
    for queue in queues:
        await queue.add_bulk(
            [
                (ProbeData(tag=f"{queue.name}-{i}", mode="sleep", seconds=0.005), None)
                for i in range(40)
            ]
        )
    await run_burst_worker(
        cluster_url,
        handlers(probe, spread_queues),
        prefix=queue_prefix,
        cluster=True,
        max_jobs=4,
        prefetch=4,
    )
    assert sorted(probe.tags()) == sorted(f"{q}-{i}" for q in spread_queues for i in range(40))
    assert {attempt for _, attempt, _ in probe.runs} == {1}
    for queue in queues:
        counts = await queue.counts()
        assert counts[JobState.COMPLETED] == 40 and counts[JobState.ACTIVE] == 0


@pytest.mark.usefixtures("full_buffer")
async def test_a_stop_releases_buffered_jobs_of_every_shard(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str, cluster_url: str
) -> None:
    probe = Probe()
    queues = [Queue(cluster, q, prefix=queue_prefix) for q in spread_queues]
    for queue in queues:
        for i in range(2):
            await queue.add(ProbeData(tag=f"{queue.name}-{i}", mode="sleep", seconds=30))
    worker = make_worker(
        cluster_url,
        handlers(probe, spread_queues),
        prefix=queue_prefix,
        cluster=True,
        burst=False,
        max_jobs=1,
        prefetch=5,
    )

    async def active() -> int:
        return sum([(await q.counts())[JobState.ACTIVE] for q in queues])

    async with running(worker):
        await asyncio.wait_for(probe.started.wait(), 5)
        async with asyncio.timeout(5):
            while await active() < 6:
                await asyncio.sleep(0.02)
    assert len(probe.tags()) == 1
    assert await active() == 0
    for queue in queues:
        counts = await queue.counts()
        assert counts[JobState.WAITING] == 2
