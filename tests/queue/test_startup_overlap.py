"""on_startup runs beside the worker's first claims: a job claimed meanwhile waits in its slot
until on_startup returns, and is released unspent if on_startup fails."""

import asyncio
import contextlib
from typing import Any

import pytest
from forgestack_queue.job import Job
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.runner import Handler
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, run_burst_worker

from tests.queue.probe import PROBE, Probe, ProbeData


class StartupRefusedError(RuntimeError):
    pass


async def _until_active(queue: Queue, job_id: str) -> None:
    async with asyncio.timeout(5):
        while True:
            job = await queue.get_job(job_id)
            if job is not None and job.state is JobState.ACTIVE:
                return
            await asyncio.sleep(0.01)


async def test_a_job_claimed_during_on_startup_runs_once_it_returns(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="early"), JobOptions(attempts=1))
    opened = asyncio.Event()
    seen: list[Any] = []

    async def on_startup(ctx: dict[str, Any]) -> None:
        await opened.wait()
        ctx["client"] = "open"

    async def handle(job: Job[ProbeData]) -> dict[str, Any]:
        seen.append(job.ctx.get("client"))
        return await probe.handle(job)

    handler = Handler(queue=PROBE, fn=handle, data_model=ProbeData)
    worker = make_worker(redis_url, [handler], prefix=queue_prefix, on_startup=on_startup)
    run = asyncio.create_task(worker.async_run())
    try:
        await _until_active(queue, added.id)  # claimed while on_startup still waits
        await asyncio.sleep(0.2)
        assert probe.runs == []
        opened.set()
        await asyncio.wait_for(run, 10)
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        await worker.close()
    assert seen == ["open"]
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.COMPLETED


async def test_a_failing_on_startup_stops_the_worker_and_releases_what_it_claimed(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="early"), JobOptions(attempts=1))
    refuse = asyncio.Event()

    async def on_startup(ctx: dict[str, Any]) -> None:
        await refuse.wait()
        raise StartupRefusedError("unsafe login")

    worker = make_worker(
        redis_url, [probe.handler()], prefix=queue_prefix, burst=False, on_startup=on_startup
    )
    run = asyncio.create_task(worker.async_run())
    try:
        await _until_active(queue, added.id)
        refuse.set()
        with pytest.raises(StartupRefusedError, match="unsafe login"):
            await asyncio.wait_for(run, 10)
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError, StartupRefusedError):
            await run
        await worker.close()
    assert probe.runs == []
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.WAITING
    assert job.attempts_made == 0
    assert (await queue.counts())[JobState.ACTIVE] == 0


async def test_a_burst_worker_with_nothing_to_do_still_runs_on_startup_to_the_end(
    probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    steps: list[str] = []

    async def on_startup(ctx: dict[str, Any]) -> None:
        await asyncio.sleep(0.3)
        steps.append("started")

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        steps.append("stopped")

    await run_burst_worker(
        redis_url,
        [probe.handler()],
        prefix=queue_prefix,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )
    assert steps == ["started", "stopped"]


async def test_a_job_timeout_counts_from_when_it_runs_not_from_its_claim_during_on_startup(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    # A claimed job waits for on_startup in its slot; its timeout is the handler's budget, so an
    # on_startup longer than that timeout must not spend (here: fail) the attempt unrun.
    added = await queue.add(ProbeData(tag="early"), JobOptions(attempts=1, timeout=300))
    opened = asyncio.Event()

    async def on_startup(ctx: dict[str, Any]) -> None:
        await opened.wait()

    worker = make_worker(redis_url, [probe.handler()], prefix=queue_prefix, on_startup=on_startup)
    run = asyncio.create_task(worker.async_run())
    try:
        await _until_active(queue, added.id)
        await asyncio.sleep(0.6)  # twice the job's timeout, before the job could start
        opened.set()
        await asyncio.wait_for(run, 10)
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        await worker.close()
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.COMPLETED, job
    assert len(probe.runs) == 1
