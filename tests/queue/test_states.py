"""Counts are exact at every moment: each job is in exactly one state, even with two workers."""

import asyncio

from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, running

from tests.queue.probe import Probe, ProbeData


async def test_counts_always_add_up_while_two_workers_drain(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    total = 400
    await queue.add_bulk(
        [
            (
                ProbeData(tag=str(i), mode="fail-until-2" if i % 4 == 0 else "ok"),
                JobOptions(attempts=2),
            )
            for i in range(total)
        ]
    )
    workers = [
        make_worker(redis_url, [probe.handler()], prefix=queue_prefix, burst=False, max_jobs=20)
        for _ in range(2)
    ]
    samples: list[dict[JobState, int]] = []
    deadline = asyncio.get_running_loop().time() + 30
    async with running(*workers):
        while True:
            counts = await queue.counts()
            samples.append(counts)
            if counts[JobState.COMPLETED] == total:
                break
            assert asyncio.get_running_loop().time() < deadline, counts
            await asyncio.sleep(0.005)
    assert len(samples) > 3
    assert all(sum(c.values()) == total for c in samples)
    assert len(probe.runs) == total + total // 4
    ids_run_per_tag: dict[str, int] = {}
    for tag, _, _ in probe.runs:
        ids_run_per_tag[tag] = ids_run_per_tag.get(tag, 0) + 1
    assert max(ids_run_per_tag.values()) == 2
    assert sum(w.jobs_complete for w in workers) == total
    assert all(w.jobs_complete > 0 for w in workers), "both workers took part"
