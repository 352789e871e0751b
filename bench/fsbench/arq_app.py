"""The worker `bench/arq_api.py` runs through arq's CLI: one no-op arq function named after the
bench queue, typed by a contract as a catalog queue is."""

import os
import sys
from dataclasses import dataclass

from arq.connections import RedisSettings
from arq.worker import func
from forgestack_queue.arq_cli import use_forge_worker
from forgestack_queue.job import Job
from forgestack_queue.options import JobOptions
from loguru import logger
from pydantic import BaseModel

from .systems import FORGE_OPTIONS, PREFIX, QUEUE, BenchData

use_forge_worker()
logger.remove()
logger.add(sys.stderr, level="WARNING")


class BenchResult(BaseModel):
    n: int


@dataclass(frozen=True)
class BenchContract:
    data_model: type[BaseModel] = BenchData
    result_model: type[BaseModel] = BenchResult
    defaults: JobOptions = FORGE_OPTIONS


CONTRACTS = {QUEUE: BenchContract()}


async def noop(job: Job[BenchData]) -> BenchResult:
    return BenchResult(n=job.data.n)


class WorkerSettings:
    functions = [func(noop, name=QUEUE)]  # type: ignore[arg-type]
    redis_settings = RedisSettings.from_dsn(
        os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    queue_prefix = PREFIX
    queue_contracts = CONTRACTS
    max_jobs = 100
