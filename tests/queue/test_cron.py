"""Cron ticks go through the queue with an idempotent id: two workers, one run per tick."""

import asyncio
from typing import Any

from arq.cron import cron
from forgestack_queue.cron import CRON_QUEUE
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
