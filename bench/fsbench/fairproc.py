"""The fairness bench's worker: a long-running ForgeWorker in its own process (spawned, started by
`WorkerGroup(..., target=fair_worker_process)`) that notes when each watched job started.

Jobs with a negative `n` are the watched ones (the late owner's); the rest are only counted."""

import asyncio
import contextlib
import sys
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.queues import Queue as MpQueue
from multiprocessing.synchronize import Event
from typing import Any

from arq.connections import RedisSettings, create_pool
from forgestack_queue.job import Job
from forgestack_queue.runner import Handler
from forgestack_queue.serializer import arq_job_deserializer, arq_job_serializer
from forgestack_queue.worker import ForgeWorker
from loguru import logger

from .systems import PREFIX, QUEUE, BenchData


@dataclass(frozen=True, slots=True)
class FairSpec:
    url: str
    max_jobs: int


@dataclass
class _Seen:
    jobs: int = 0
    watched: dict[int, float] = field(default_factory=dict)
    """n -> seconds from the add to the handler's start."""


SEEN = _Seen()


async def noop(job: Job[BenchData]) -> None:
    SEEN.jobs += 1
    if job.data.n < 0:
        SEEN.watched[job.data.n] = time.time() - job.data.t


async def _serve(spec: FairSpec, ready: Event, start: Event, stop: Event) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    pool = await create_pool(
        RedisSettings.from_dsn(spec.url),
        job_serializer=arq_job_serializer,
        job_deserializer=arq_job_deserializer,
    )
    worker = ForgeWorker(
        handlers=[Handler(queue=QUEUE, fn=noop, data_model=BenchData)],
        redis_pool=pool,
        queue_prefix=PREFIX,
        max_jobs=spec.max_jobs,
        handle_signals=False,
    )
    ready.set()
    await loop.run_in_executor(None, start.wait)
    main = asyncio.ensure_future(worker.main())
    await loop.run_in_executor(None, stop.wait)
    main.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await main
    await worker.close()
    return {"jobs": SEEN.jobs, "watched": dict(SEEN.watched)}


def fair_worker_process(
    spec: FairSpec,
    ready: Event,
    start: Event,
    mark: Event,
    stop: Event,
    out: "MpQueue[dict[str, Any]]",
) -> None:
    """Process entry point (WorkerGroup's protocol; `mark` is unused)."""
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    try:
        out.put(asyncio.run(_serve(spec, ready, start, stop)))
    except BaseException:
        out.put({"error": traceback.format_exc()})
        ready.set()
