"""Handlers that ignore cancellation, and one worker running two attempts of a job: the worker's
bookkeeping must stay per attempt, and no stuck task may hold a job, a slot or shutdown."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, running

from tests.queue.probe import Probe, ProbeData


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def _state(queue: Queue, job_id: str) -> JobState | None:
    job = await queue.get_job(job_id)
    return None if job is None else job.state


async def test_a_handler_ignoring_its_timeout_is_failed_at_the_deadline_and_its_slot_freed(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    stuck = await queue.add(
        ProbeData(tag="stuck", mode="swallow-cancel", seconds=2.5),
        JobOptions(timeout=200, attempts=1),
    )
    worker = make_worker(
        redis_url,
        [probe.handler()],
        prefix=queue_prefix,
        burst=False,
        max_jobs=1,
        lease_ms=600,
        cancel_grace_ms=200,
    )
    async with running(worker):
        await asyncio.wait_for(probe.started.wait(), 5)

        async def failed() -> bool:
            return await _state(queue, stuck.id) is JobState.FAILED

        await _until(failed, 2.0)
        assert probe.ended == [], "the handler still runs: the worker recorded without it"
        job = await queue.get_job(stuck.id)
        assert job is not None and job.attempts_made == 1
        assert job.failed_reason is not None
        assert job.failed_reason.startswith("timed out after 200 ms")
        # The one slot is free again although the stuck task still runs.
        nxt = await queue.add(ProbeData(tag="next"))

        async def next_done() -> bool:
            return await _state(queue, nxt.id) is JobState.COMPLETED

        await _until(next_done, 2.0)
        assert ("stuck", 1) not in probe.ended
        # The abandoned task ends late with a result: it must not replace the recorded failure.
        await _until(lambda: _true_when(("stuck", 1) in probe.ended), 5.0)
        await asyncio.sleep(0.2)
    job = await queue.get_job(stuck.id)
    assert job is not None and job.state is JobState.FAILED and job.result is None
    assert worker.jobs_complete == 1 and worker.jobs_failed == 1


async def _true_when(value: bool) -> bool:
    return value


async def test_a_stuck_attempt_is_retried_on_the_same_worker_while_it_still_runs(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(
        ProbeData(tag="x", mode="swallow-cancel", seconds=2.0),
        JobOptions(timeout=200, attempts=2),
    )
    worker = make_worker(
        redis_url,
        [probe.handler()],
        prefix=queue_prefix,
        burst=False,
        max_jobs=1,
        lease_ms=600,
        cancel_grace_ms=200,
    )
    async with running(worker):

        async def completed() -> bool:
            return await _state(queue, added.id) is JobState.COMPLETED

        await _until(completed, 3.0)
        assert [(tag, attempt) for tag, attempt, _ in probe.runs] == [("x", 1), ("x", 2)]
        assert ("x", 1) not in probe.ended
        await _until(lambda: _true_when(("x", 1) in probe.ended), 5.0)
        await asyncio.sleep(0.2)
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.COMPLETED
    assert job.attempts_made == 2 and job.result == {"tag": "x", "attempt": 2}


async def test_shutdown_completes_within_its_grace_despite_a_handler_ignoring_cancellation(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="stuck", mode="swallow-cancel", seconds=3.0))
    worker = make_worker(
        redis_url, [probe.handler()], prefix=queue_prefix, burst=False, cancel_grace_ms=300
    )
    task = asyncio.create_task(worker.async_run())
    await asyncio.wait_for(probe.started.wait(), 5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.wait_for(worker.close(), 1.5)
    job = await queue.get_job(added.id)
    # Released as on any shutdown: the attempt did not finish, so it is not spent.
    assert job is not None and job.state is JobState.WAITING and job.attempts_made == 0
    assert probe.ended == []
    await _until(lambda: _true_when(bool(probe.ended)), 5.0)


async def test_a_worker_reclaiming_its_own_running_job_keeps_both_attempts_apart(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    """An event-loop stall let the lease lapse; the same worker recovered the job and claims it
    again while attempt 1 still runs. Attempt 1 ending must not take attempt 2's bookkeeping."""
    added = await queue.add(
        ProbeData(tag="x", mode="longer-on-retry", seconds=0.6), JobOptions(attempts=3)
    )
    worker = make_worker(
        redis_url, [probe.handler()], prefix=queue_prefix, burst=False, block_ms=50
    )
    async with running(worker):
        await asyncio.wait_for(probe.started.wait(), 5)
        # What a stall longer than the lease leaves behind: a lapsed lease on a live attempt.
        await queue.redis.zadd(queue.keys.active, {added.id: 0})
        await _until(lambda: _true_when(len(probe.runs) == 2), 2.0)
        await _until(lambda: _true_when(("x", 1) in probe.ended), 2.0)
        await asyncio.sleep(0.1)
        assert ("x", 2) not in probe.ended
        assert len(worker.tasks) == 1, "attempt 2 is no longer tracked by its worker"
    job = await queue.get_job(added.id)
    # Stopping released attempt 2 (not spent); attempt 1 was counted lost by the recovery.
    assert job is not None and job.state is JobState.WAITING
    assert job.attempts_made == 1
    assert (await queue.counts())[JobState.ACTIVE] == 0
