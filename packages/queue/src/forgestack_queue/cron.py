"""arq's cron schedules, fired through our queue: each tick is a job whose id is the cron name and
its scheduled time, so however many workers see the tick, idempotent add runs it once."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from arq.cron import CronJob
from pydantic import BaseModel

from .job import Job
from .options import JobOptions, KeepJobs
from .runner import Handler

CRON_QUEUE = "cron"
CRON_OPTIONS = JobOptions(
    remove_on_complete=KeepJobs(count=1000, age=24 * 3600),
    remove_on_fail=KeepJobs(count=1000),
)
"""Ticks stay a day: long enough that a late worker's duplicate add finds the finished tick."""


class CronTick(BaseModel):
    scheduled_at: datetime


def tick_id(cron_job: CronJob, at: datetime) -> str:
    return f"cron-{cron_job.name}-{int(at.timestamp() * 1000)}"


def cron_handler(cron_jobs: Sequence[CronJob]) -> Handler[CronTick, Any]:
    by_name = {cj.name: cj for cj in cron_jobs}

    async def run_tick(job: Job[CronTick]) -> Any:
        cron_job = by_name[job.name]
        job.logger.info("cron {} tick for {}", job.name, job.data.scheduled_at.isoformat())
        return await cron_job.coroutine({**job.ctx, "job_id": job.id, "job": job})

    return Handler(queue=CRON_QUEUE, fn=run_tick, data_model=CronTick, names=frozenset(by_name))
