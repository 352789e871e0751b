"""A handler's `Job.created_at` is when the job was added, on every attempt: not when the
attempt started (the worker once left it to the dataclass default, the time it built the Job)."""

import asyncio
from datetime import datetime
from typing import Any

from forgestack_queue.job import Job
from forgestack_queue.options import Backoff, JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.runner import Handler
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker

from tests.queue.probe import PROBE, ProbeData


async def test_every_attempt_sees_when_the_job_was_added(
    queue: Queue, redis_url: str, queue_prefix: str
) -> None:
    seen: list[datetime] = []

    async def handle(job: Job[ProbeData]) -> dict[str, Any]:
        seen.append(job.created_at)
        if job.attempt == 1:
            raise RuntimeError("first attempt fails")
        return {}

    added = await queue.add(
        ProbeData(tag="t"), JobOptions(attempts=2, backoff=Backoff(type="fixed", delay=50))
    )
    await asyncio.sleep(0.1)  # the attempts start well after the add
    handler = Handler(queue=PROBE, fn=handle, data_model=ProbeData)
    await run_burst_worker(redis_url, [handler], prefix=queue_prefix)

    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.COMPLETED
    assert job.created_at is not None and job.processed_at is not None
    assert seen == [job.created_at, job.created_at]
    assert (job.processed_at - job.created_at).total_seconds() >= 0.1
