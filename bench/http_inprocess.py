"""CPU per enqueue request inside the app, without an HTTP server: ForgeStack's ASGI app and the
bare FastAPI + arq app (`fsbench/bare_http.py`) each called directly, 32 requests at a time, on
one dedicated Redis.

    uv run python bench/http_inprocess.py [--requests 4000] [--rounds 3]

wrk figures (`http_door.py`) move with whatever else the machine runs; this one leaves out
uvicorn's parsing, the sockets and wrk, which both apps share, and keeps what differs: middleware,
routing, auth, validation, the enqueue and its audit event, the Redis client. The operator key
authenticates (no database lookup: an organisation key's is cached for API_KEY_CACHE_TTL_S, see
`http_door.py` for the whole path). Rounds alternate between the apps; the median is reported."""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop
from fsbench.server import dedicated_redis

BODY = b'{"data":{"user_id":"u1","action":"greet","payload":{"n":1}}}'
ADMIN_KEY = "http-inprocess-admin-key"
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _scope() -> dict[str, Any]:
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
        (b"authorization", f"Bearer {ADMIN_KEY}".encode()),
        (b"user-agent", b"wrk"),
    ]
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/v1/queues/my-new-job/jobs",
        "raw_path": b"/api/v1/queues/my-new-job/jobs", "query_string": b"", "root_path": "",
        "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip


async def _request(app: App) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(), receive, send)
    if sent[0]["status"] != 202:
        raise RuntimeError(f"answered {sent[0]['status']}: {sent[1:]}")


async def _cpu_us_per_request(app: App, requests: int) -> float:
    batches = max(requests // 32, 1)
    cpu0 = time.process_time()
    for _ in range(batches):
        await asyncio.gather(*(_request(app) for _ in range(32)))
    return (time.process_time() - cpu0) / (batches * 32) * 1e6


async def bench(args: argparse.Namespace) -> dict[str, list[float]]:
    from forgestack_api.main import create_app
    from fsbench.bare_http import app as bare
    from fsbench.bare_http import lifespan as bare_lifespan

    forge = create_app()
    figures: dict[str, list[float]] = {"bare FastAPI + arq": [], "ForgeStack API": []}
    async with forge.router.lifespan_context(forge), bare_lifespan(bare):
        apps: list[tuple[str, App]] = [("bare FastAPI + arq", bare), ("ForgeStack API", forge)]
        for _, app in apps:
            await _cpu_us_per_request(app, 320)  # warm-up: first-use caches, connections
        for round_ in range(args.rounds):
            for name, app in apps if round_ % 2 else apps[::-1]:
                figures[name].append(await _cpu_us_per_request(app, args.requests))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000, help="per app and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with dedicated_redis() as redis_server, tempfile.TemporaryDirectory() as data_dir:
        os.environ |= {
            "REDIS_URL": redis_server.url,
            "BENCH_REDIS_URL": redis_server.url,
            "QUEUE_PREFIX": f"fsinproc{uuid.uuid4().hex[:6]}",
            "FORGESTACK_ADMIN_API_KEY": ADMIN_KEY,
            "FORGESTACK_DATA_DIR": str(Path(data_dir)),
            "LOG_LEVEL": "WARNING",
        }
        figures = uvloop.run(bench(args))
    for name, values in figures.items():
        runs = ", ".join(f"{v:.0f}" for v in values)
        print(f"{name}: {statistics.median(values):.0f} us CPU per request (runs: {runs})")
    bare, forge = (statistics.median(v) for v in figures.values())
    print(f"ForgeStack / bare: {forge / bare:.2f}x the CPU per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
