"""What stops a queue's starts (an operator's pause, a remote side's hold through `RateLimited`)
stops its buffered jobs too: a job the worker claimed ahead must not start once its queue is
paused or held, any more than a job still waiting would."""

import asyncio
import contextlib
import signal
import time

import pytest
from forgestack_queue.claims import Claimer
from forgestack_queue.controls import QueueControls
from forgestack_queue.errors import RateLimited
from forgestack_queue.job import Job
from forgestack_queue.producer import Queue
from forgestack_queue.runner import ClaimedJob, Handler
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, running

from tests.queue.probe import PROBE, Probe, ProbeData
from tests.queue.until import until


async def _active_is(queue: Queue, n: int) -> bool:
    return (await queue.counts())[JobState.ACTIVE] == n


@pytest.mark.usefixtures("full_buffer")
async def test_a_buffered_job_does_not_start_once_its_queue_is_paused(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    """README: a paused queue - "no worker starts another job of the queue". B, claimed ahead
    while A runs, is such a job: once the queue is paused it must not start when A ends."""
    a = await queue.add(ProbeData(tag="a", mode="sleep", seconds=0.6))
    b = await queue.add(ProbeData(tag="b"))
    worker = make_worker(
        redis_url,
        [probe.handler()],
        prefix=queue_prefix,
        max_jobs=1,
        prefetch=1,
        burst=False,
        block_ms=50,
    )
    controls = QueueControls(queue.redis, PROBE, prefix=queue_prefix)
    async with running(worker):
        await asyncio.wait_for(probe.started.wait(), 5)
        await until(lambda: _active_is(queue, 2))  # A runs, B is buffered
        await controls.pause()

        async def a_done() -> bool:
            rec = await queue.get_job(a.id)
            return rec is not None and rec.state is JobState.COMPLETED

        await until(a_done)
        await asyncio.sleep(0.5)
        assert probe.tags() == ["a"], "a job of a paused queue started"
        rec = await queue.get_job(b.id)
        assert rec is not None and rec.state is JobState.WAITING
        assert rec.attempts_made == 0


@pytest.mark.usefixtures("full_buffer")
async def test_a_buffered_job_does_not_start_while_its_queue_is_held(
    queue: Queue, redis_url: str, queue_prefix: str
) -> None:
    """RateLimited: "no worker starts a job of its queue for delay_ms". A ends limited (hold of
    1 s) while B waits in the buffer: B must not start before the hold ends."""
    starts: list[tuple[str, float]] = []
    limited_at: list[float] = []

    async def handle(job: Job[ProbeData]) -> str:
        starts.append((job.data.tag, time.monotonic()))
        if job.data.tag == "a" and not limited_at:
            await asyncio.sleep(0.3)
            limited_at.append(time.monotonic())
            raise RateLimited(1000)
        return job.data.tag

    handler = Handler(queue=PROBE, fn=handle, data_model=ProbeData)
    await queue.add(ProbeData(tag="a"))
    await queue.add(ProbeData(tag="b"))
    worker = make_worker(
        redis_url, [handler], prefix=queue_prefix, max_jobs=1, prefetch=1, burst=False
    )
    async with running(worker):
        await until(lambda: _active_is(queue, 2))  # A runs, B is buffered

        async def both_done() -> bool:
            return (await queue.counts())[JobState.COMPLETED] == 2

        await until(both_done)
    assert limited_at
    b_started = [t for tag, t in starts if tag == "b"]
    assert b_started and b_started[0] - limited_at[0] >= 0.9, (
        f"b started {b_started[0] - limited_at[0]:.3f} s into the queue's 1 s hold"
    )


LONG_S = 6.0
"""The long jobs' length: the peer must start them in far less."""


async def test_a_worker_whose_jobs_turned_long_holds_no_buffer_an_idle_peer_could_run(
    queue: Queue, redis_url: str, queue_prefix: str
) -> None:
    """README: "a worker of long jobs buffers nothing, so its idle peers take what is waiting".
    The buffer grows while short jobs end fast; when the queue's next jobs are long, the rate of
    ended attempts falls to nothing and the wanted size to 0 - but what the buffer already holds
    stays claimed behind the long jobs. A peer that starts then finds nothing waiting and sits
    idle while those jobs wait a whole long job for a slot."""
    busy, peer = Probe(), Probe()
    await queue.add_bulk([(ProbeData(tag=f"s{i}"), None) for i in range(600)])
    for i in range(4):
        await queue.add(ProbeData(tag=f"long{i}", mode="sleep", seconds=LONG_S))
    one = make_worker(redis_url, [busy.handler()], prefix=queue_prefix, max_jobs=2, burst=False)
    two = make_worker(redis_url, [peer.handler()], prefix=queue_prefix, max_jobs=2, burst=False)
    async with running(one):

        async def long_started() -> bool:
            return any(tag.startswith("long") for tag in busy.tags())

        await until(long_started, 20)
        await asyncio.sleep(0.5)  # the rate estimate is stale: the wanted size is 0 by now
        async with running(two):
            # All four start well within one long job (a held buffer would wait that long),
            # with room for a loaded machine's slow writes (they lengthen the shelf life).
            deadline = asyncio.get_running_loop().time() + LONG_S / 2
            while True:
                counts = await queue.counts()
                ran_long = [t for t in [*busy.tags(), *peer.tags()] if t.startswith("long")]
                if len(ran_long) == 4 or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.05)
    assert len(ran_long) == 4, (
        f"{len(ran_long)} of 4 long jobs started with 4 slots free for them; "
        f"active {counts[JobState.ACTIVE]}, waiting {counts[JobState.WAITING]}; "
        f"the peer ran {[t for t in peer.tags() if t.startswith('long')]}"
    )


@pytest.mark.usefixtures("full_buffer")
async def test_a_stop_during_a_claim_starts_no_buffered_job(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM (arq's handle_sig) cancels the running attempts, then the loop. A loop inside a
    claim (shielded) stays in it for a round trip and then releases what it got, one write
    each; meanwhile the cancelled attempt's release frees its slot, and that slot must not
    start the buffered job: the worker is stopping, so B goes back to waiting without running."""
    real_claim = Claimer.claim
    gate = asyncio.Event()
    gate.set()
    in_claim = asyncio.Event()

    async def slow_claim(self: Claimer, want: int) -> tuple[list[ClaimedJob], int, int]:
        if not gate.is_set():
            in_claim.set()
            await gate.wait()  # a claim whose reply takes a while (a loaded Redis)
        return await real_claim(self, want)

    monkeypatch.setattr(Claimer, "claim", slow_claim)
    await queue.add(ProbeData(tag="a", mode="sleep", seconds=5.0))
    b = await queue.add(ProbeData(tag="b"))
    worker = make_worker(
        redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1, prefetch=2, burst=False
    )
    task = asyncio.create_task(worker.async_run())
    try:
        await asyncio.wait_for(probe.started.wait(), 5)
        await until(lambda: _active_is(queue, 2))  # A runs, B is buffered, one place left
        gate.clear()
        await queue.add(ProbeData(tag="c"))  # wakes the loop: it claims for the buffer's room
        await asyncio.wait_for(in_claim.wait(), 5)
        worker.handle_sig(signal.SIGTERM)
        await asyncio.sleep(0.3)  # A's release is written; its slot frees
        gate.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
    finally:
        gate.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await worker.close()
    assert probe.tags() == ["a"], "a buffered job started after SIGTERM"
    rec = await queue.get_job(b.id)
    assert rec is not None and rec.state is JobState.WAITING and rec.attempts_made == 0


@pytest.mark.usefixtures("full_buffer")
async def test_a_buffered_job_cancelled_while_it_runs_records_when_it_ran(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    """finish.lua moves a buffered job's recorded start to when it ran; the cancel branch
    (fail_cancelled) rereads the stored history, so a buffered job cancelled while running kept
    its claim as its start (A's start, 0.6 s before it ran)."""
    a = await queue.add(ProbeData(tag="a", mode="sleep", seconds=0.6))
    b = await queue.add(ProbeData(tag="b", mode="sleep", seconds=5.0))
    worker = make_worker(
        redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1, prefetch=1, burst=False
    )
    async with running(worker):
        await asyncio.wait_for(probe.started.wait(), 5)
        await until(lambda: _active_is(queue, 2))  # A runs, B is buffered

        async def b_runs() -> bool:
            return probe.tags() == ["a", "b"]

        await until(b_runs)
        await asyncio.sleep(0.2)
        await queue.cancel(b.id)

        async def b_failed() -> bool:
            rec = await queue.get_job(b.id)
            return rec is not None and rec.state is JobState.FAILED

        await until(b_failed)
    rec_a, rec_b = await queue.get_job(a.id), await queue.get_job(b.id)
    assert rec_a is not None and rec_b is not None and rec_b.failed_reason == "cancelled"
    assert rec_a.processed_at is not None and rec_b.processed_at is not None
    assert (rec_b.processed_at - rec_a.processed_at).total_seconds() >= 0.5
