"""Attempts, backoff timings, unrecoverable errors and timeouts, through a real worker."""

import asyncio
import itertools

import pytest
from forgestack_queue.options import Backoff, JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker

from tests.queue.probe import Probe, ProbeData


async def test_any_exception_is_retried_until_it_succeeds(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="t", mode="fail-until-3"), JobOptions(attempts=5))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert [attempt for _, attempt, _ in probe.runs] == [1, 2, 3]
    job = await queue.get_job(added.id)
    assert job is not None
    assert job.state is JobState.COMPLETED
    assert job.attempts_made == 3
    assert job.result == {"tag": "t", "attempt": 3}


async def test_exhausted_attempts_land_in_the_failed_store_with_reason_and_trace(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="t", mode="fail"), JobOptions(attempts=2))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert len(probe.runs) == 2
    job = await queue.get_job(added.id)
    assert job is not None
    assert job.state is JobState.FAILED
    assert job.attempts_made == 2
    assert job.failed_reason == "RuntimeError: probe t failed on attempt 2"
    assert job.stacktrace is not None and "Traceback" in job.stacktrace
    assert job.data == {"tag": "t", "mode": "fail", "seconds": 0.0}
    assert (await queue.counts())[JobState.FAILED] == 1


async def test_unrecoverable_error_stops_retrying_at_once(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="t", mode="unrecoverable"), JobOptions(attempts=5))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert len(probe.runs) == 1
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.FAILED
    assert job.failed_reason == "UnrecoverableError: cannot ever succeed"


@pytest.mark.parametrize(
    ("backoff", "expected_gaps"),
    [
        (Backoff(type="fixed", delay=300), [0.3, 0.3]),
        (Backoff(type="exponential", delay=200), [0.2, 0.4]),
        (Backoff(schedule=[100, 500]), [0.1, 0.5]),
    ],
)
async def test_backoff_spaces_the_attempts(
    queue: Queue,
    probe: Probe,
    redis_url: str,
    queue_prefix: str,
    backoff: Backoff,
    expected_gaps: list[float],
) -> None:
    await queue.add(ProbeData(tag="t", mode="fail"), JobOptions(attempts=3, backoff=backoff))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    times = [t for _, _, t in probe.runs]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == len(expected_gaps)
    for gap, expected in zip(gaps, expected_gaps, strict=True):
        assert expected - 0.01 <= gap <= expected + 0.15, (gaps, expected_gaps)


async def test_a_job_running_past_its_timeout_fails_with_the_reason(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(
        ProbeData(tag="slow", mode="sleep", seconds=5), JobOptions(timeout=100, attempts=1)
    )
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.FAILED
    assert job.failed_reason == "timed out after 100 ms"


async def test_retried_job_keeps_its_priority(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    await queue.add(
        ProbeData(tag="urgent", mode="fail-until-2"), JobOptions(attempts=2, priority=1)
    )
    await queue.add_bulk([(ProbeData(tag=f"bulk{i}"), JobOptions(priority=5)) for i in range(5)])
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1)
    assert probe.tags()[:2] == ["urgent", "urgent"]


async def test_a_short_timeout_fires_on_time_behind_a_long_one(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    await queue.add(ProbeData(tag="long", mode="sleep", seconds=0.5), JobOptions(timeout=60_000))
    short = await queue.add(
        ProbeData(tag="short", mode="sleep", seconds=5), JobOptions(timeout=150, attempts=1)
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert loop.time() - started < 2
    job = await queue.get_job(short.id)
    assert job is not None and job.failed_reason == "timed out after 150 ms"
    assert job.stacktrace is not None
    assert "await asyncio.sleep(job.data.seconds)" in job.stacktrace, "shows where the job was"
