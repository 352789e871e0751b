"""Real worker processes and a real HTTP server for the live-operations tests.

Workers run the venv's `arq` script directly (not through `uv run`), so the pid we hold is the
worker's own and SIGKILL really kills it."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_MS = 1000


class Fleet:
    def __init__(self, redis_url: str, prefix: str, workdir: Path) -> None:
        self.env = dict(os.environ) | {
            "REDIS_URL": redis_url,
            "QUEUE_PREFIX": prefix,
            "FORGESTACK_DATA_DIR": str(workdir / "data"),
            "WORKER_HEARTBEAT_MS": str(HEARTBEAT_MS),
            "WORKER_SHUTDOWN_GRACE_S": "1",
            "LOG_LEVEL": "INFO",
        }
        self.env.pop("DATABASE_URL", None)
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "arq"), "worker.WorkerSettings"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.workdir.glob("worker-*.log")))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """The app (lifespan already run) on a loopback port: streaming responses need a real server."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class EventReader:
    """Collects one SSE connection's events in the background."""

    def __init__(self, client: httpx.AsyncClient, key: str, queue: str, **headers: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.opened = asyncio.Event()
        self._task = asyncio.create_task(self._read(client, key, queue, headers))

    async def _read(
        self, client: httpx.AsyncClient, key: str, queue: str, headers: dict[str, str]
    ) -> None:
        headers = headers | {"Authorization": f"Bearer {key}"}
        url = "/api/v1/events"
        async with client.stream("GET", url, params={"queue": queue}, headers=headers) as resp:
            assert resp.status_code == 200, await resp.aread()
            assert resp.headers["content-type"].startswith("text/event-stream")
            fields: dict[str, str] = {}
            async for line in resp.aiter_lines():
                self.opened.set()
                if line == "":
                    if "data" in fields:
                        self.events.append(
                            {"sse_id": fields["id"], "sse_event": fields["event"]}
                            | json.loads(fields["data"])
                        )
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    fields[name] = value

    async def until(self, done: Any, within_s: float = 60) -> list[dict[str, Any]]:
        async with asyncio.timeout(within_s):
            while not done(self.events):
                if self._task.done():
                    self._task.result()
                    raise AssertionError("the event stream ended")
                await asyncio.sleep(0.02)
        return self.events

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
