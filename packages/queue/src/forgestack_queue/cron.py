"""arq's cron schedules, fired through our queue: each tick is a job whose id is the cron name and
its scheduled time, so however many workers see the tick, idempotent add runs it once."""

import hashlib
import re
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from arq.cron import CronJob
from pydantic import BaseModel
from redis.asyncio import Redis

from .job import Job
from .options import JobOptions, KeepJobs
from .producer import Queue
from .runner import Handler

CRON_QUEUE = "cron"
CRON_OPTIONS = JobOptions(
    remove_on_complete=KeepJobs(count=1000, age=24 * 3600),
    remove_on_fail=KeepJobs(count=1000),
)
"""Ticks stay a day: long enough that a late worker's duplicate add finds the finished tick."""

_NOT_IN_JOB_ID = re.compile(r"[^A-Za-z0-9._:@/+=-]+")
"""Everything `JobOptions.job_id` refuses; arq names may hold spaces or `<locals>`."""


class CronTick(BaseModel):
    scheduled_at: datetime


def tick_id(name: str, at: datetime) -> str:
    """A valid job id for any arq name: characters a job id refuses become `-`, and then a hash of
    the name keeps two names that differ only there from sharing (and so skipping) ticks."""
    slug = _NOT_IN_JOB_ID.sub("-", name)[:100]
    if slug != name:
        slug += "-" + hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"cron-{slug}-{int(at.timestamp() * 1000)}"


async def add_due_ticks(
    redis: Redis, prefix: str, cron_jobs: Sequence[CronJob], n: datetime, horizon: float
) -> None:
    """arq's schedule arithmetic: every tick due before `horizon` (epoch s) is added, delayed to
    its time, under its idempotent id."""
    queue = Queue(redis, CRON_QUEUE, prefix=prefix)
    for cron_job in cron_jobs:
        if cron_job.next_run is None:
            if cron_job.run_at_startup:
                cron_job.next_run = n
            else:
                cron_job.calculate_next(n)
                continue
        if cron_job.next_run.timestamp() < horizon:
            at = cron_job.next_run
            delay_ms = max(0, int((at.timestamp() - time.time()) * 1000))
            await queue.add(
                CronTick(scheduled_at=at),
                CRON_OPTIONS.model_copy(
                    update={"job_id": tick_id(cron_job.name, at), "delay": delay_ms}
                ),
                name=cron_job.name,
            )
            cron_job.calculate_next(at)


def cron_handler(cron_jobs: Sequence[CronJob]) -> Handler[CronTick, Any]:
    by_name = {cj.name: cj for cj in cron_jobs}

    async def run_tick(job: Job[CronTick]) -> Any:
        cron_job = by_name[job.name]
        job.logger.info("cron {} tick for {}", job.name, job.data.scheduled_at.isoformat())
        return await cron_job.coroutine({**job.ctx, "job_id": job.id, "job": job})

    return Handler(queue=CRON_QUEUE, fn=run_tick, data_model=CronTick, names=frozenset(by_name))
