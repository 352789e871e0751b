"""Helpers for users' tests: a real `Job` for handler unit tests, a burst worker for integration."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from arq.connections import RedisSettings
from arq.cron import CronJob

from .connect import cluster_client
from .job import Job
from .options import JobOptions
from .runner import Handler
from .worker import ForgeWorker

DataT = TypeVar("DataT")


def make_job(
    data: DataT,
    *,
    queue: str = "test",
    job_id: str = "job-1",
    attempt: int = 1,
    options: JobOptions | None = None,
    ctx: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> Job[DataT]:
    """The same `Job` the worker builds, so a handler test exercises the real type."""
    return Job(
        id=job_id,
        queue=queue,
        name=name or queue,
        data=data,
        attempt=attempt,
        options=options or JobOptions(),
        ctx=dict(ctx or {}),
    )


def make_worker(
    redis_url: str,
    handlers: Sequence[Handler[Any, Any]],
    *,
    prefix: str,
    burst: bool = True,
    max_jobs: int = 10,
    cron_jobs: Sequence[CronJob] = (),
    cluster: bool = False,
    **kwargs: Any,
) -> ForgeWorker:
    """`cluster`: `redis_url` names a node of a Redis Cluster; the worker gets a cluster client."""
    if cluster:
        kwargs["redis_pool"] = cluster_client(redis_url)
    return ForgeWorker(
        handlers=handlers,
        redis_settings=RedisSettings.from_dsn(redis_url),
        queue_prefix=prefix,
        burst=burst,
        max_jobs=max_jobs,
        cron_jobs=list(cron_jobs) or None,
        handle_signals=False,
        **kwargs,
    )


async def run_burst_worker(
    redis_url: str,
    handlers: Sequence[Handler[Any, Any]],
    *,
    prefix: str,
    max_jobs: int = 10,
    **kwargs: Any,
) -> ForgeWorker:
    """Runs until nothing is waiting, running, or delayed within `burst_horizon_ms`; then closes."""
    worker = make_worker(redis_url, handlers, prefix=prefix, max_jobs=max_jobs, **kwargs)
    try:
        await worker.async_run()
    finally:
        await worker.close()
    return worker


@asynccontextmanager
async def running(*workers: ForgeWorker) -> AsyncIterator[None]:
    """Runs workers in the background for the block, then stops them as SIGTERM would."""
    tasks = [asyncio.create_task(w.async_run()) for w in workers]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for worker in workers:
            await worker.close()
