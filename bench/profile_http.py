"""Profiles the API answering `POST /api/v1/queues/my-new-job/jobs` under wrk, to find where a
request's CPU goes.

    uv run --with pyinstrument python bench/profile_http.py [--seconds 10] [--route bulk]

pyinstrument is a one-off tool here, not a project dependency (hence `--with`). The API runs in
this process (uvicorn, as `uv run api` runs it) under the profiler, with a fresh PostgreSQL
database and organisation key as `bench/http_door.py` sets them up; wrk runs in its own process."""

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import uvloop
from fsbench.scratch_db import scratch_database
from fsbench.server import dedicated_redis, free_port
from fsbench.wrk import ensure_wrk, write_script
from http_door import BODY, PREFIX, ROUTE, mint_key


async def profile(args: argparse.Namespace, workdir: Path) -> None:
    import uvicorn
    from forgestack_shared.settings import get_settings
    from pyinstrument import Profiler

    wrk = ensure_wrk()
    with dedicated_redis() as redis_server:
        async with scratch_database(args.postgres_url, "fsbench_prof") as app_url:
            port = free_port()
            env = {
                "REDIS_URL": redis_server.url,
                "DATABASE_URL": app_url,
                "QUEUE_PREFIX": PREFIX,
                "LOG_LEVEL": args.log_level,
                "FORGESTACK_DATA_DIR": str(workdir / "data"),
            }
            os.environ.update(env)
            get_settings.cache_clear()
            bearer = mint_key(dict(os.environ))
            body = {"jobs": [BODY] * args.bulk} if args.route == "bulk" else BODY
            script = write_script(workdir / "p.lua", body, bearer)
            url = f"http://127.0.0.1:{port}{ROUTE}" + (":bulk" if args.route == "bulk" else "")
            config = uvicorn.Config(
                "forgestack_api.main:create_app",
                factory=True,
                host="127.0.0.1",
                port=port,
                log_config=None,
                loop="uvloop",
                http="httptools",
            )
            server = uvicorn.Server(config)
            serving = asyncio.create_task(server.serve())
            while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
                await asyncio.sleep(0.05)
            warm = f"-d{args.warmup}s"
            proc = await asyncio.create_subprocess_exec(wrk, "-t2", "-c32", warm, "-s", script, url)
            await proc.wait()
            profiler = Profiler(interval=0.001, async_mode="disabled")
            cpu0, t0 = time.process_time(), time.perf_counter()
            profiler.start()
            proc = await asyncio.create_subprocess_exec(
                wrk, "-t2", "-c32", f"-d{args.seconds}s", "--latency", "-s", script, url
            )
            await proc.wait()
            profiler.stop()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
            server.should_exit = True
            await serving
    print(f"API process: {cpu:.2f} s CPU over {wall:.2f} s under the profiler")
    print(profiler.output_text(unicode=False, color=False, show_all=False))
    print("Self time by function (top 40):")
    print("\n".join(profiler.output_text(unicode=False, color=False, flat=True).splitlines()[:48]))
    if args.html is not None:
        await asyncio.to_thread(args.html.write_text, profiler.output_html())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--route", choices=("single", "bulk"), default="single")
    parser.add_argument("--bulk", type=int, default=100)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fsbench-prof-") as tmp:
        # uvloop, as uvicorn runs the API (`loop="auto"` picks it when installed).
        uvloop.run(profile(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
