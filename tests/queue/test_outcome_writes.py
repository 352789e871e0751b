"""Two outcome writes may be in flight: an attempt that ends while one write is out goes at once
in a second write (finish and fetch next included) rather than waiting for the first to return."""

import asyncio
import contextlib
from typing import Any

import pytest
from forgestack_queue.claims import Claimer
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.runner import ClaimedJob
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker

from tests.queue.probe import Probe, ProbeData


async def test_an_outcome_does_not_wait_for_the_write_in_flight(
    queue: Queue,
    probe: Probe,
    redis_url: str,
    queue_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    finish_and_claim = Claimer.finish_and_claim
    gate = asyncio.Event()
    writes: list[int] = []

    async def held_first(
        self: Claimer, finish_args: list[Any], want: int
    ) -> tuple[list[int], list[ClaimedJob]]:
        writes.append(want)
        if len(writes) == 1:
            await gate.wait()  # the first write stays in flight until the test lets it go
        return await finish_and_claim(self, finish_args, want)

    monkeypatch.setattr(Claimer, "finish_and_claim", held_first)
    added = [
        await queue.add(ProbeData(tag="quick"), JobOptions(attempts=1)),
        await queue.add(ProbeData(tag="slow", mode="sleep", seconds=0.3), JobOptions(attempts=1)),
        await queue.add(ProbeData(tag="next-1"), JobOptions(attempts=1)),
        await queue.add(ProbeData(tag="next-2"), JobOptions(attempts=1)),
    ]
    worker = make_worker(redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=2)
    run = asyncio.create_task(worker.async_run())
    try:
        async with asyncio.timeout(5):
            while len(writes) < 2:  # "slow" ended while "quick"'s write is held
                await asyncio.sleep(0.01)
        assert {"quick", "slow"} <= set(probe.tags())  # the second write may have fetched one
        gate.set()
        await asyncio.wait_for(run, 10)
    finally:
        gate.set()
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        await worker.close()
    assert sorted(probe.tags()) == ["next-1", "next-2", "quick", "slow"]
    for job in added:
        record = await queue.get_job(job.id)
        assert record is not None and record.state is JobState.COMPLETED
