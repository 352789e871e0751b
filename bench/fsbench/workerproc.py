"""One worker in its own OS process (spawned, so nothing is inherited from the bench's loop).

The process connects, reports ready, waits for the start signal, runs, and sends back what only
it can see: jobs done, the wall-clock time its last job finished, its CPU time, what it sent to
Redis, and each job's enqueue->start latency."""

import asyncio
import contextlib
import resource
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.queues import Queue as MpQueue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import forgestack_queue
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker, func
from forgestack_queue.job import Job
from forgestack_queue.runner import Handler
from forgestack_queue.serializer import arq_job_deserializer, arq_job_serializer
from forgestack_queue.worker import ForgeWorker
from loguru import logger

from . import counters
from .systems import ARQ_FUNCTION, PREFIX, QUEUE, SYSTEMS, BenchData, System


@dataclass
class _State:
    last_end: float = 0.0
    latencies: list[float] = field(default_factory=list)
    sleep_s: float = 0.0
    """How long each job awaits (an I/O-bound job's wait); 0: a no-op."""


STATE = _State()


async def arq_noop(ctx: dict[str, Any], data: dict[str, Any]) -> None:
    STATE.latencies.append(time.time() - data["t"])
    if STATE.sleep_s:
        await asyncio.sleep(STATE.sleep_s)


async def forge_noop(job: Job[BenchData]) -> None:
    STATE.latencies.append(time.time() - job.data.t)
    if STATE.sleep_s:
        await asyncio.sleep(STATE.sleep_s)


class TimedArqWorker(Worker):
    """Raw arq, plus one timestamp when each job's task is done (after arq recorded its result)."""

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        STATE.last_end = time.time()


_WRITE_HOOK = callable(getattr(ForgeWorker, "_after_write", None))
"""Whether this job layer's attempts end before their outcome is stored (finish and fetch next);
a baseline revision's may predate it (`bench/scaling.py --baseline-rev`)."""


class TimedForgeWorker(ForgeWorker):
    """ForgeWorker, plus one timestamp when each write of outcomes returns (an attempt's task ends
    before its outcome is stored; the write that stores it claims the slot's next job). An older
    job layer's task waits for its write: there, when each attempt's task is done."""

    def _after_write(self, *args: Any) -> None:
        """Any revision's arguments: (ended, jobs, freed), and since two writes may be under way,
        also what the write wanted."""
        super()._after_write(*args)
        STATE.last_end = time.time()

    def _done(self, key: str) -> None:
        super()._done(key)
        if not _WRITE_HOOK:
            STATE.last_end = time.time()


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    system_key: str
    url: str
    burst: bool
    max_jobs: int | None = None
    """Slots per process; None: the system's own setting."""
    sleep_ms: float = 0.0
    """Each job awaits this long (asyncio.sleep) after noting its start."""


def _build(system: System, pool: ArqRedis, spec: WorkerSpec) -> Worker:
    burst = spec.burst
    max_jobs = spec.max_jobs or system.max_jobs
    if system.kind == "arq":
        assert system.poll_delay_s is not None
        return TimedArqWorker(
            functions=[func(arq_noop, name=ARQ_FUNCTION)],
            redis_pool=pool,
            burst=burst,
            max_jobs=max_jobs,
            poll_delay=system.poll_delay_s,
            handle_signals=False,
        )
    if not _WRITE_HOOK and not callable(getattr(ForgeWorker, "_done", None)):
        raise RuntimeError("ForgeWorker has neither end-of-job hook TimedForgeWorker stamps from")
    return TimedForgeWorker(
        handlers=[Handler(queue=QUEUE, fn=forge_noop, data_model=BenchData)],
        redis_pool=pool,
        queue_prefix=PREFIX,
        burst=burst,
        max_jobs=max_jobs,
        handle_signals=False,
    )


async def _connect(system: System, url: str) -> ArqRedis:
    settings = RedisSettings.from_dsn(url)
    if system.kind == "arq":
        pool = await create_pool(settings)  # arq's default serializer: pickle
    else:
        pool = await create_pool(
            settings, job_serializer=arq_job_serializer, job_deserializer=arq_job_deserializer
        )
    await pool.ping()
    return pool


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _counts_at(mark: Event) -> tuple[int, int]:
    """Blocks (in a thread) until the bench marks a point in time; the counts at that moment.
    The bench always sets the mark before stopping a worker, so this thread always ends."""
    mark.wait()
    return counters.COUNTS.commands, counters.COUNTS.round_trips


async def _serve(
    spec: WorkerSpec, ready: Event, start: Event, mark: Event, stop: Event
) -> dict[str, Any]:
    system = SYSTEMS[spec.system_key]
    loop = asyncio.get_running_loop()
    pool = await _connect(system, spec.url)
    STATE.sleep_s = spec.sleep_ms / 1000
    worker = _build(system, pool, spec)
    ready.set()
    await loop.run_in_executor(None, start.wait)
    counters.COUNTS.reset()
    STATE.latencies.clear()
    cpu0, t0 = _cpu_s(), time.time()
    if spec.burst:
        await worker.main()
        marked = (0, 0)
    else:
        at_mark = loop.run_in_executor(None, _counts_at, mark)
        main = asyncio.ensure_future(worker.main())
        await loop.run_in_executor(None, stop.wait)
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await main
        marked = await at_mark
    result = {
        "jobs_complete": worker.jobs_complete,
        "jobs_failed": worker.jobs_failed,
        "jobs_retried": worker.jobs_retried,
        "started_at": t0,
        "last_end": STATE.last_end,
        "cpu_s": _cpu_s() - cpu0,
        "commands": counters.COUNTS.commands,
        "round_trips": counters.COUNTS.round_trips,
        "commands_since_mark": counters.COUNTS.commands - marked[0],
        "round_trips_since_mark": counters.COUNTS.round_trips - marked[1],
        "latencies": list(STATE.latencies) if not spec.burst else [],
        "job_layer": str(Path(forgestack_queue.__file__).parent),
    }
    await worker.close()
    return result


def _loop_factory(spec: WorkerSpec) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if SYSTEMS[spec.system_key].kind == "arq":
        return None
    try:
        from forgestack_queue.event_loop import new_loop
    except ImportError:
        return None
    return new_loop


def worker_process(
    spec: WorkerSpec,
    ready: Event,
    start: Event,
    mark: Event,
    stop: Event,
    out: "MpQueue[dict[str, Any]]",
) -> None:
    """Process entry point. Per-job logging is off (WARNING) so it is not what we measure."""
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    counters.install()
    try:
        # Each system on the loop it runs on as shipped: ForgeWorker creates a uvloop loop under
        # arq's CLI (forgestack_queue.event_loop; a baseline tree without it keeps asyncio's).
        with asyncio.Runner(loop_factory=_loop_factory(spec)) as runner:
            out.put(runner.run(_serve(spec, ready, start, mark, stop)))
    except BaseException:
        out.put({"error": traceback.format_exc()})
        ready.set()
