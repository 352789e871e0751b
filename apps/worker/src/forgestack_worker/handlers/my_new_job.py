"""The seed's example job, kept as the template a new job copies."""

import asyncio
import math
from datetime import UTC, datetime

from forgestack_queue.errors import UnrecoverableError
from forgestack_queue.job import Job
from forgestack_shared.jobs.my_new_job import MyNewJobData, MyNewJobResult


class MyNewJobError(RuntimeError):
    """A transient failure: the queue retries it while attempts remain."""


async def handle_my_new_job(job: Job[MyNewJobData]) -> MyNewJobResult:
    data = job.data
    log = job.logger
    log.info("processing action {} for user {}", data.action, data.user_id)
    if data.action == "fail":
        raise MyNewJobError(f"action 'fail' requested by user {data.user_id}")
    if data.action == "fail-permanently":
        raise UnrecoverableError(f"action 'fail-permanently' requested by user {data.user_id}")
    if data.action == "fail-once" and job.attempt == 1:
        raise MyNewJobError("action 'fail-once' fails its first attempt")
    if data.action == "sleep":
        # Progress and log lines show in GET /api/v1/jobs/{id} and as events while it runs.
        seconds = float(data.payload.get("seconds", 1))
        steps = max(1, math.ceil(seconds))
        for step in range(steps):
            await job.log(f"step {step + 1} of {steps}")
            await asyncio.sleep(seconds / steps)
            await job.update_progress({"done": step + 1, "of": steps})
    log.info("action {} done", data.action)
    return MyNewJobResult(success=True, processed_at=datetime.now(UTC))
