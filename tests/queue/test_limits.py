"""Bounded options, the payload cap and capped due times: nothing a caller passes can make a job
unreadable or oversized."""

from datetime import UTC, datetime, timedelta

import pytest
from forgestack_queue.errors import PayloadTooLargeError
from forgestack_queue.keys import job_key_prefix, queues_key
from forgestack_queue.metrics import metrics_key
from forgestack_queue.options import (
    MAX_BACKOFF_MS,
    MAX_DELAY_MS,
    MAX_KEEP_AGE_S,
    MAX_KEEP_COUNT,
    MAX_PRIORITY,
    MAX_TIMEOUT_MS,
    Backoff,
    JobOptions,
)
from forgestack_queue.producer import DEFAULT_MAX_PAYLOAD_BYTES, Queue
from forgestack_queue.scripts import _source, scripts_for
from forgestack_queue.states import JobState
from pydantic import ValidationError
from redis.asyncio import Redis

from tests.queue.probe import PROBE, ProbeData


@pytest.mark.parametrize(
    "bad",
    [
        {"delay": MAX_DELAY_MS + 1},
        {"delay": 300_000_000_000_000},
        {"timeout": MAX_TIMEOUT_MS + 1},
        {"priority": MAX_PRIORITY},
        {"backoff": {"delay": MAX_BACKOFF_MS + 1}},
        {"backoff": {"schedule": [1000, MAX_BACKOFF_MS + 1]}},
        {"backoff": {"schedule": [1] * 101}},
        {"remove_on_complete": MAX_KEEP_COUNT + 1},
        {"remove_on_fail": {"age": MAX_KEEP_AGE_S + 1}},
        {"remove_on_fail": {"count": MAX_KEEP_COUNT + 1}},
    ],
)
def test_options_past_their_documented_range_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        JobOptions.model_validate(bad)


def test_options_at_their_limits_are_accepted() -> None:
    JobOptions.model_validate(
        {
            "delay": MAX_DELAY_MS,
            "timeout": MAX_TIMEOUT_MS,
            "priority": MAX_PRIORITY - 1,
            "backoff": {"delay": MAX_BACKOFF_MS, "schedule": [MAX_BACKOFF_MS] * 100},
            "remove_on_complete": MAX_KEEP_COUNT,
            "remove_on_fail": {"age": MAX_KEEP_AGE_S, "count": MAX_KEEP_COUNT},
        }
    )


@pytest.mark.parametrize("attempt", [39, 40, 999, 1000])
def test_exponential_backoff_never_passes_its_cap(attempt: int) -> None:
    assert Backoff(type="exponential", delay=1000).delay_for(attempt) == MAX_BACKOFF_MS


async def test_an_oversized_payload_is_refused_and_nothing_is_written(
    redis: Redis, queue_prefix: str
) -> None:
    queue = Queue(redis, PROBE, prefix=queue_prefix, max_payload_bytes=200)
    with pytest.raises(PayloadTooLargeError) as caught:
        await queue.add_bulk([(ProbeData(tag="small"), None), (ProbeData(tag="x" * 300), None)])
    assert caught.value.limit == 200 and caught.value.size > 300
    assert await redis.keys(f"{queue_prefix}:*") == []
    await queue.add(ProbeData(tag="small"))
    assert (await queue.counts())[JobState.WAITING] == 1


async def test_the_default_payload_cap_is_half_a_mebibyte(queue: Queue) -> None:
    assert DEFAULT_MAX_PAYLOAD_BYTES == 512 * 1024
    with pytest.raises(PayloadTooLargeError):
        await queue.add(ProbeData(tag="x" * DEFAULT_MAX_PAYLOAD_BYTES))
    assert sum((await queue.counts()).values()) == 0


async def test_a_due_time_from_an_unchecked_producer_is_capped_and_reads_back(
    queue: Queue,
) -> None:
    """A producer that bypasses JobOptions (or a retry delay from old code) cannot schedule a
    job past year 9999: the script caps the delay, so get_job and the delayed page still read."""
    k = queue.keys
    await scripts_for(queue.redis).add(
        keys=[
            k.wait,
            k.delayed,
            k.seq,
            k.marker,
            queues_key(queue.prefix),
            metrics_key(queue.prefix, queue.name),
        ],
        args=[
            job_key_prefix(queue.prefix),
            k.base,
            queue.name,
            "far",
            PROBE,
            "{}",
            "{}",
            0,
            300_000_000_000_000,
            "",
        ],
    )
    job = await queue.get_job("far")
    assert job is not None and job.delay_until is not None and job.corrupt is None
    assert job.delay_until <= datetime.now(UTC) + timedelta(milliseconds=MAX_DELAY_MS + 60_000)
    page = await queue.get_jobs(JobState.DELAYED)
    assert [j.id for j in page.jobs] == ["far"]


def test_the_scripts_cap_due_times_at_the_options_maximum_delay() -> None:
    assert f"local MAX_DUE_DELAY = {MAX_DELAY_MS}\n" in _source("add")
