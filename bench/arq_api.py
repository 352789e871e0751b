"""arq's API on our engine: `enqueue_job` against `Queue.add` (same queue, same catalog options),
and how long `await job.result()` takes with a worker (arq's CLI) running, from our pool and from
arq's own pool (whose calls the worker takes from arq's queue).

    uv run python bench/arq_api.py    # about a minute; writes bench/ARQ_API.md
"""

import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from arq.connections import RedisSettings
from arq.connections import create_pool as arq_create_pool
from forgestack_queue.arq_pool import ForgeArqRedis, create_pool
from forgestack_queue.producer import Queue
from forgestack_queue.serializer import arq_job_deserializer, arq_job_serializer
from fsbench import counters
from fsbench.arq_app import CONTRACTS
from fsbench.server import RedisServer, command_stats, dedicated_redis, reset_stats
from fsbench.systems import FORGE_OPTIONS, PREFIX, QUEUE, payload
from loguru import logger

HERE = Path(__file__).resolve().parent
JOBS = 5_000
BLOCK = 250
RESULT_JOBS = 300
PLAIN_JOBS = 60


async def _rates(server: RedisServer, pool: ForgeArqRedis) -> dict[str, float]:
    queue = Queue(pool, QUEUE, prefix=PREFIX)

    async def via_queue(n: int) -> None:
        await queue.add(payload(n), FORGE_OPTIONS)

    async def via_enqueue_job(n: int) -> None:
        await pool.enqueue_job(QUEUE, **payload(n))

    adders = {"Queue.add": via_queue, "enqueue_job": via_enqueue_job}
    spent = dict.fromkeys(adders, 0.0)
    await via_queue(-1)
    server.control().flushall()
    for i, start in enumerate(range(0, JOBS, BLOCK)):
        order = list(adders) if i % 2 == 0 else list(adders)[::-1]
        for name in order:
            t0 = time.perf_counter()
            for n in range(start, start + BLOCK):
                await adders[name](n)
            spent[name] += time.perf_counter() - t0
    figures = {f"{name} (jobs/s)": JOBS / s for name, s in spent.items()}
    for name, add in adders.items():
        ctl = server.control()
        ctl.flushall()
        reset_stats(ctl)
        counters.COUNTS.reset()
        for n in range(500):
            await add(n)
        figures[f"{name} round trips per job"] = counters.COUNTS.round_trips / 500
        figures[f"{name} commands Redis ran per job"] = sum(command_stats(ctl).values()) / 500
    return figures


async def _result_waits(pool: ForgeArqRedis) -> list[float]:
    """Sequential: enqueue, then await the result, with the worker idle in between."""
    waits = []
    for n in range(RESULT_JOBS):
        t0 = time.perf_counter()
        job = await pool.enqueue_job(QUEUE, n=n, t=time.time())
        assert job is not None
        await job.result(timeout=10)
        waits.append((time.perf_counter() - t0) * 1000)
    return waits


async def _plain_result_waits(server: RedisServer) -> list[float]:
    """arq's own pool, with a JSON serializer (pickle needs the worker's opt-in) and arq's defaults
    for the rest: a call waits in arq's queue for the worker's next intake pass (`poll_delay`,
    0.5 s) and `Job.result()` polls every 0.5 s. Calls come at random moments, as a web app's do."""
    pool = await arq_create_pool(
        RedisSettings.from_dsn(server.url),
        job_serializer=arq_job_serializer,
        job_deserializer=arq_job_deserializer,
    )
    rng = random.Random(7)
    waits = []
    try:
        for n in range(PLAIN_JOBS):
            await asyncio.sleep(rng.random() * 0.5)
            t0 = time.perf_counter()
            job = await pool.enqueue_job(QUEUE, n=n, t=time.time())
            assert job is not None
            await job.result(timeout=10)
            waits.append((time.perf_counter() - t0) * 1000)
    finally:
        await pool.aclose()
    return waits


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


async def _open(server: RedisServer) -> ForgeArqRedis:
    return await create_pool(
        RedisSettings.from_dsn(server.url), queue_prefix=PREFIX, contracts=CONTRACTS
    )


async def measure_rates(server: RedisServer) -> dict[str, float]:
    pool = await _open(server)
    try:
        return await _rates(server, pool)
    finally:
        await pool.aclose()


async def measure_result_waits(server: RedisServer) -> list[float]:
    pool = await _open(server)
    try:
        return await _result_waits(pool)
    finally:
        await pool.aclose()


def run(server: RedisServer) -> tuple[dict[str, float], list[float], list[float]]:
    rates = asyncio.run(measure_rates(server))
    server.control().flushall()
    env = os.environ | {"BENCH_REDIS_URL": server.url}
    worker = subprocess.Popen(
        [sys.executable, "-m", "arq", "fsbench.arq_app.WorkerSettings"], cwd=HERE, env=env
    )
    try:
        deadline = time.monotonic() + 30
        while not server.control().exists("arq:queue:health-check"):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the bench worker did not start")
            time.sleep(0.1)
        waits = asyncio.run(measure_result_waits(server))
        plain = asyncio.run(_plain_result_waits(server))
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    return rates, waits, plain


def main() -> int:
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    counters.install()
    started = datetime.now(UTC)
    with dedicated_redis() as server:
        rates, waits, plain = run(server)
    lines = [
        "# arq's API on the job layer",
        "",
        f"Written by `uv run python bench/arq_api.py` on {started:%Y-%m-%d %H:%M} UTC, on a dedicated",
        "loopback Redis. Same queue and catalog options (`my-new-job`'s defaults) for both producers,",
        f"{JOBS:,} sequential awaited adds each, in alternating blocks of {BLOCK}.",
        "",
        "| metric | value |",
        "| --- | ---: |",
        *[f"| {name} | {value:,.2f} |" for name, value in rates.items()],
        f"| enqueue_job / Queue.add rate | {rates['enqueue_job (jobs/s)'] / rates['Queue.add (jobs/s)']:.2f}x |",
        "",
        f"`await job.result(timeout=10)` right after `enqueue_job`, {RESULT_JOBS} jobs one after",
        "another, a ForgeWorker started by arq's CLI serving the queue (no-op handler); the wait",
        "includes the add, the worker's pick-up and the wait on the queue's event stream (XREAD",
        "BLOCK until the job's `completed` event, no polling):",
        "",
        "| p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |",
        "| ---: | ---: | ---: | ---: |",
        f"| {_pct(waits, 50):.1f} | {_pct(waits, 95):.1f} | {_pct(waits, 99):.1f} | {max(waits):.1f} |",
        "",
        f"The same from arq's own `create_pool` (JSON serializer, arq's defaults otherwise), {PLAIN_JOBS}",
        "calls at random moments 0-0.5 s apart: the worker takes the call from arq's queue at its next",
        "intake pass (`poll_delay` 0.5 s), writes arq's result key as the job ends, and arq's `Job`",
        "polls that key every 0.5 s:",
        "",
        "| p50 (ms) | p95 (ms) | max (ms) |",
        "| ---: | ---: | ---: |",
        f"| {_pct(plain, 50):.1f} | {_pct(plain, 95):.1f} | {max(plain):.1f} |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    (HERE / "ARQ_API.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
