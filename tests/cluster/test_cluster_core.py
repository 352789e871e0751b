"""The queue suite's core cases on a local 3-master Redis Cluster: add, claim, finish, retry,
delayed, priority, actions and reports, with queues whose slots live on different masters."""

import asyncio
from typing import Any

from forgestack_queue.events import read_queues
from forgestack_queue.keys import QueueKeys
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue, known_queues
from forgestack_queue.runner import Handler
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, run_burst_worker, running
from forgestack_queue.workers import live_workers
from redis.asyncio.cluster import RedisCluster

from tests.cluster.conftest import master_of
from tests.queue.probe import Probe, ProbeData


def handlers(probe: Probe, queues: list[str]) -> list[Handler[ProbeData, dict[str, Any]]]:
    return [Handler(queue=q, fn=probe.handle, data_model=ProbeData) for q in queues]


async def test_queues_spread_over_masters_and_every_key_of_a_queue_shares_its_slot(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str
) -> None:
    masters = {master_of(cluster, queue_prefix, q) for q in spread_queues}
    assert len(masters) >= 2
    k = QueueKeys(queue_prefix, spread_queues[0], tagged=True)
    slots = {
        cluster.keyslot(key)
        for key in (k.wait, k.active, k.job("a"), k.logs("a"), k.metrics, k.events, k.ctl)
    }
    assert len(slots) == 1


async def test_add_claim_finish_across_masters(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str, cluster_url: str
) -> None:
    probe = Probe()
    queues = [Queue(cluster, q, prefix=queue_prefix) for q in spread_queues]
    added = {}
    for queue in queues:
        results = await queue.add_bulk(
            [(ProbeData(tag=f"{queue.name}-{i}"), None) for i in range(5)]
        )
        added[queue.name] = [r.id for r in results]
    assert sorted(await known_queues(cluster, prefix=queue_prefix)) == spread_queues
    await run_burst_worker(
        cluster_url, handlers(probe, spread_queues), prefix=queue_prefix, cluster=True
    )
    assert sorted(probe.tags()) == sorted(f"{q}-{i}" for q in spread_queues for i in range(5))
    for queue in queues:
        assert (await queue.counts())[JobState.COMPLETED] == 5
        record = await queue.get_job(added[queue.name][0])
        assert record is not None and record.state is JobState.COMPLETED
        assert record.result == {"tag": f"{queue.name}-0", "attempt": 1}
        page = await queue.get_jobs(JobState.COMPLETED)
        assert len(page.jobs) == 5


async def test_retries_then_manual_retry(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str, cluster_url: str
) -> None:
    probe = Probe()
    a, b = (Queue(cluster, q, prefix=queue_prefix) for q in spread_queues[:2])
    flaky = await a.add(ProbeData(tag="flaky", mode="fail-until-2"), JobOptions(attempts=3))
    doomed = await b.add(ProbeData(tag="doomed", mode="fail"), JobOptions(attempts=2))
    await run_burst_worker(
        cluster_url, handlers(probe, spread_queues), prefix=queue_prefix, cluster=True
    )
    assert (await a.get_job(flaky.id)).state is JobState.COMPLETED  # type: ignore[union-attr]
    failed = await b.get_job(doomed.id)
    assert failed is not None and failed.state is JobState.FAILED
    assert probe.tags().count("doomed") == 2
    retried = await b.retry(doomed.id)
    assert retried.state is JobState.WAITING
    await run_burst_worker(
        cluster_url, handlers(probe, spread_queues), prefix=queue_prefix, cluster=True
    )
    assert probe.tags().count("doomed") == 4
    assert await b.retry_failed() == 1


async def test_delayed_jobs_wait_for_their_time(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str, cluster_url: str
) -> None:
    probe = Probe()
    queue = Queue(cluster, spread_queues[1], prefix=queue_prefix)
    added_at = asyncio.get_running_loop().time()
    job = await queue.add(ProbeData(tag="later"), JobOptions(delay=300))
    assert job.state is JobState.DELAYED
    await run_burst_worker(
        cluster_url, handlers(probe, spread_queues), prefix=queue_prefix, cluster=True
    )
    assert probe.tags() == ["later"]
    assert probe.runs[0][2] - added_at >= 0.29


async def test_priority_order_on_each_shard(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str, cluster_url: str
) -> None:
    probe = Probe()
    queue = Queue(cluster, spread_queues[2], prefix=queue_prefix)
    await queue.add(ProbeData(tag="p2"), JobOptions(priority=2))
    await queue.add(ProbeData(tag="none-a"))
    await queue.add(ProbeData(tag="p1"), JobOptions(priority=1))
    await queue.add(ProbeData(tag="none-b"))
    await run_burst_worker(
        cluster_url, handlers(probe, spread_queues), prefix=queue_prefix, cluster=True, max_jobs=1
    )
    assert probe.tags() == ["none-a", "none-b", "p1", "p2"]


async def test_job_actions_and_reports_route_to_the_queue_shard(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str, cluster_url: str
) -> None:
    probe = Probe()
    queue = Queue(cluster, spread_queues[0], prefix=queue_prefix)
    delayed = await queue.add(ProbeData(tag="promoted"), JobOptions(delay=60_000))
    waiting = await queue.add(ProbeData(tag="cancelled"))
    gone = await queue.add(ProbeData(tag="removed"))
    reported = await queue.add(ProbeData(tag="reports", mode="report"))
    assert (await queue.promote(delayed.id)).state is JobState.WAITING
    assert (await queue.set_priority(delayed.id, 3)).priority == 3
    assert (await queue.cancel(waiting.id)).state is JobState.FAILED
    await queue.remove(gone.id)
    assert await queue.get_job(gone.id) is None
    await run_burst_worker(
        cluster_url, handlers(probe, spread_queues), prefix=queue_prefix, cluster=True
    )
    assert sorted(probe.tags()) == ["promoted", "reports"]
    record = await queue.get_job(reported.id)
    assert record is not None and record.logs == ["half way through reports"]
    assert record.progress == {"done": 2, "of": 2}
    assert await queue.trim(JobState.COMPLETED, count=0) == 2
    assert await queue.clean(JobState.FAILED, 0) == 1
    assert await cluster.exists(queue.keys.logs(reported.id)) == 0


async def test_an_idle_worker_wakes_for_a_job_on_any_shard(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str, cluster_url: str
) -> None:
    probe = Probe()
    worker = make_worker(
        cluster_url,
        handlers(probe, spread_queues),
        prefix=queue_prefix,
        cluster=True,
        burst=False,
        block_ms=5_000,
    )
    async with running(worker):
        await asyncio.sleep(0.3)  # idle: blocked on every queue's marker
        for q in spread_queues:
            started = asyncio.get_running_loop().time()
            await Queue(cluster, q, prefix=queue_prefix).add(ProbeData(tag=q))
            while q not in probe.tags():
                await asyncio.sleep(0.01)
            # Woken by the marker, not by the block's 5 s timeout.
            assert asyncio.get_running_loop().time() - started < 2.5


async def test_a_cancel_reaches_the_worker_from_any_shard(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str, cluster_url: str
) -> None:
    probe = Probe()
    worker = make_worker(
        cluster_url, handlers(probe, spread_queues), prefix=queue_prefix, cluster=True, burst=False
    )
    async with running(worker):
        for q in spread_queues:  # whichever node the worker listens on, two queues are elsewhere
            probe.started.clear()
            queue = Queue(cluster, q, prefix=queue_prefix)
            job = await queue.add(ProbeData(tag=q, mode="sleep", seconds=30))
            await asyncio.wait_for(probe.started.wait(), 5)
            await queue.cancel(job.id)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 3  # a lease renewal (10 s here) would be far later
            while (record := await queue.get_job(job.id)) and record.state is not JobState.FAILED:
                assert loop.time() < deadline, record.state
                await asyncio.sleep(0.02)
            assert record is not None and record.failed_reason == "cancelled"


async def test_live_workers_read_across_slots(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str, cluster_url: str
) -> None:
    probe = Probe()
    workers = [
        make_worker(
            cluster_url, handlers(probe, spread_queues), prefix=queue_prefix, cluster=True,
            burst=False,
        )
        for _ in range(3)
    ]  # fmt: skip
    async with running(*workers):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15  # three workers starting on a loaded machine
        while len(fleet := await live_workers(cluster, queue_prefix)) < 3:  # type: ignore[arg-type]
            assert loop.time() < deadline, fleet
            await asyncio.sleep(0.05)
    assert {w.id for w in fleet} == {w.worker_id for w in workers}


async def test_events_of_queues_on_several_shards_are_read_together(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str
) -> None:
    keys = [QueueKeys(queue_prefix, q, tagged=True) for q in spread_queues]
    queues = [Queue(cluster, q, prefix=queue_prefix) for q in spread_queues]
    for queue in queues:
        await queue.add(ProbeData(tag=queue.name))
    cursors, seen = await read_queues(
        cluster, keys, dict.fromkeys(spread_queues, "0-0"), owner=None, block_ms=1000
    )
    assert sorted(e.queue for e in seen) == spread_queues
    assert {e.event for e in seen} == {"added"}
    # Nothing new: the read blocks until the last queue moves, then returns its event.
    blocked = asyncio.ensure_future(read_queues(cluster, keys, cursors, owner=None, block_ms=5000))
    await asyncio.sleep(0.2)
    assert not blocked.done()
    await queues[-1].add(ProbeData(tag="late"))
    moved, late = await asyncio.wait_for(blocked, 3)
    assert [(e.queue, e.event) for e in late] == [(spread_queues[-1], "added")]
    assert moved[spread_queues[0]] == cursors[spread_queues[0]]
