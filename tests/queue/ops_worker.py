"""A worker process for the cross-process tests: `python -m arq tests.queue.ops_worker.Settings`
from the repo root, configured by REDIS_URL, QUEUE_PREFIX and WORKER_LEASE_MS. Its handler logs
each start and end in Redis (`<prefix>:test:log`, "<event> <tag> <pid>") so the test sees what
ran where."""

import asyncio
import os

from arq.connections import RedisSettings
from forgestack_queue.arq_cli import use_forge_worker
from forgestack_queue.job import Job
from forgestack_queue.runner import Handler
from pydantic import BaseModel
from redis.asyncio import Redis

OPS = "ops"
PREFIX = os.environ.get("QUEUE_PREFIX", "fs")
LOG_KEY = f"{PREFIX}:test:log"


class OpsData(BaseModel):
    tag: str
    seconds: float = 0.0


async def handle(job: Job[OpsData]) -> str:
    redis: Redis = job.ctx["redis"]
    pid = os.getpid()
    await redis.rpush(LOG_KEY, f"start {job.data.tag} {pid}")  # type: ignore[misc]
    try:
        await asyncio.sleep(job.data.seconds)
    except asyncio.CancelledError:
        await redis.rpush(LOG_KEY, f"cancelled {job.data.tag} {pid}")  # type: ignore[misc]
        raise
    await redis.rpush(LOG_KEY, f"end {job.data.tag} {pid}")  # type: ignore[misc]
    return job.data.tag


use_forge_worker()


class Settings:
    handlers = [Handler(queue=OPS, fn=handle, data_model=OpsData)]
    redis_settings = RedisSettings.from_dsn(os.environ["REDIS_URL"])
    queue_prefix = PREFIX
    lease_ms = int(os.environ.get("WORKER_LEASE_MS", "30000"))
    max_jobs = int(os.environ.get("TEST_MAX_JOBS", "4"))
    health_check_key = f"{PREFIX}:test:health"
