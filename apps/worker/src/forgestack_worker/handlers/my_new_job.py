"""The seed's example job, kept as the template a new job copies."""

import asyncio
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
    if data.action == "sleep":
        seconds = float(data.payload.get("seconds", 1))
        await asyncio.sleep(seconds)
    log.info("action {} done", data.action)
    return MyNewJobResult(success=True, processed_at=datetime.now(UTC))
