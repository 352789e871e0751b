"""Cron ticks go through the queue with an idempotent id: two workers, one run per tick."""

import asyncio
from datetime import UTC, datetime
from typing import Any

from arq.cron import cron
from forgestack_queue.cron import CRON_QUEUE, tick_id
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, running
from redis.asyncio import Redis

from tests.queue.probe import Probe

ticks: list[str] = []


async def every_second(ctx: dict[str, Any]) -> str:
    ticks.append(ctx["job_id"])
    return "ticked"


async def test_two_workers_run_each_cron_tick_once(
    probe: Probe, redis_url: str, queue_prefix: str, redis: Redis
) -> None:
    ticks.clear()
    # One CronJob object per worker, as in two processes: each computes the schedule itself.
    workers = [
        make_worker(
            redis_url,
            [probe.handler()],
            prefix=queue_prefix,
            burst=False,
            cron_jobs=[cron(every_second, second=set(range(60)), name="every-second")],
        )
        for _ in range(2)
    ]
    async with running(*workers):
        await asyncio.sleep(3.5)
    assert len(ticks) >= 2
    assert len(ticks) == len(set(ticks)), "a tick ran twice"
    completed = await Queue(redis, CRON_QUEUE, prefix=queue_prefix).get_jobs(JobState.COMPLETED)
    assert {j.name for j in completed.jobs} == {"every-second"}
    assert all(j.result == "ticked" for j in completed.jobs)


async def test_cron_entries_whose_names_are_not_job_ids_still_run(
    probe: Probe, redis_url: str, queue_prefix: str, redis: Redis
) -> None:
    ran: list[str] = []

    async def nested(ctx: dict[str, Any]) -> None:
        ran.append(ctx["job"].name)

    spaced = cron(every_second, second=set(range(60)), name="nightly report")
    default_named = cron(nested, second=set(range(60)))
    assert default_named.name.endswith("<locals>.nested")
    ticks.clear()
    worker = make_worker(
        redis_url,
        [probe.handler()],
        prefix=queue_prefix,
        burst=False,
        cron_jobs=[spaced, default_named],
    )
    async with running(worker):
        await asyncio.sleep(2.5)
    cron_queue = Queue(redis, CRON_QUEUE, prefix=queue_prefix)
    failed = await cron_queue.get_jobs(JobState.FAILED)
    assert failed.jobs == [], failed.jobs[0].failed_reason
    assert ticks and ran == [default_named.name] * len(ran) and ran
    completed = await cron_queue.get_jobs(JobState.COMPLETED)
    assert {j.name for j in completed.jobs} == {"nightly report", default_named.name}


def test_tick_ids_are_valid_job_ids_and_distinct_for_names_differing_in_refused_characters() -> (
    None
):
    at = datetime(2026, 1, 1, tzinfo=UTC)
    names = ["nightly report", "nightly<report>", "nightly-report", "cron:a.<locals>.b", "é" * 300]
    ids = [tick_id(name, at) for name in names]
    assert len(set(ids)) == len(ids)
    for job_id in ids:
        JobOptions(job_id=job_id)
    assert tick_id("nightly-report", at) == "cron-nightly-report-1767225600000"
