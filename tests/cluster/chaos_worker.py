"""A worker process on the local cluster for the chaos test: `python -m tests.cluster.chaos_worker`
from the repo root, configured by CLUSTER_URL, QUEUE_PREFIX, QUEUES (comma separated) and
WORKER_LEASE_MS. Its handler logs each start and end on the cluster (LOG_KEY) so the test sees
every execution, including those of a process it killed."""

import asyncio
import os

from forgestack_queue.connect import cluster_client
from forgestack_queue.job import Job
from forgestack_queue.runner import Handler
from forgestack_queue.worker import ForgeWorker
from pydantic import BaseModel
from redis.asyncio.cluster import RedisCluster

PREFIX = os.environ.get("QUEUE_PREFIX", "fs")
LOG_KEY = f"{PREFIX}:test:{{chaos}}:log"


class ChaosData(BaseModel):
    tag: str
    seconds: float = 0.0


async def handle(job: Job[ChaosData]) -> str:
    redis: RedisCluster = job.ctx["redis"]
    await redis.rpush(LOG_KEY, f"start {job.data.tag}")  # type: ignore[misc]
    await asyncio.sleep(job.data.seconds)
    await redis.rpush(LOG_KEY, f"end {job.data.tag}")  # type: ignore[misc]
    return job.data.tag


async def main() -> None:
    worker = ForgeWorker(
        handlers=[
            Handler(queue=q, fn=handle, data_model=ChaosData)
            for q in os.environ["QUEUES"].split(",")
        ],
        redis_pool=cluster_client(os.environ["CLUSTER_URL"]),
        queue_prefix=PREFIX,
        lease_ms=int(os.environ.get("WORKER_LEASE_MS", "30000")),
        max_jobs=4,
        health_check_key=f"{PREFIX}:test:health",
    )
    try:
        await worker.async_run()
    finally:
        await worker.close()


if __name__ == "__main__":
    asyncio.run(main())
