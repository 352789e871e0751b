"""Profiles one worker draining a full queue, to find where its time goes.

    uv run --with pyinstrument python bench/profile_drain.py [--system forge] [--jobs 20000]
        [--slots 100] [--sleep-ms 10]

pyinstrument is a one-off tool here, not a project dependency (hence `--with`). The worker runs in
this process under the profiler; the queue is filled first, outside the profile. Prints the call
tree (wall time, which for a CPU-bound worker is its CPU time) and writes an HTML report with --html."""

import argparse
import asyncio
import sys
import time
from pathlib import Path

from fsbench.server import dedicated_redis
from fsbench.systems import SYSTEMS, fill
from fsbench.workerproc import STATE, WorkerSpec, _build, _connect
from loguru import logger


async def drain(spec: WorkerSpec, jobs: int, html: Path | None) -> None:
    from pyinstrument import Profiler

    system = SYSTEMS[spec.system_key]
    await fill(system, spec.url, jobs)
    pool = await _connect(system, spec.url)
    STATE.sleep_s = spec.sleep_ms / 1000
    worker = _build(system, pool, spec)
    profiler = Profiler(interval=0.001, async_mode="disabled")
    t0 = time.perf_counter()
    profiler.start()
    await worker.main()
    profiler.stop()
    wall = time.perf_counter() - t0
    await worker.close()
    print(f"{system.label}: {worker.jobs_complete:,} jobs in {wall:.2f} s under the profiler")
    print(profiler.output_text(unicode=False, color=False, show_all=False))
    print("Self time by function (top 25):")
    print("\n".join(profiler.output_text(unicode=False, color=False, flat=True).splitlines()[:32]))
    if html is not None:
        await asyncio.to_thread(html.write_text, profiler.output_html())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--system", choices=sorted(SYSTEMS), default="forge")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--slots", type=int, help="max_jobs (default: the system's)")
    parser.add_argument("--sleep-ms", type=float, default=0.0, help="each job awaits this long")
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    with dedicated_redis() as server:
        spec = WorkerSpec(args.system, server.url, True, args.slots, args.sleep_ms)
        asyncio.run(drain(spec, args.jobs, args.html))
    return 0


if __name__ == "__main__":
    sys.exit(main())
