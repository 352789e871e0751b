"""The production processes, started as the README says (`uv run api`, `uv run arq
worker.WorkerSettings`) against real Redis: a job enqueued over HTTP completes with its result."""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
KEY = "e2e-admin-key"


def _command(*argv: str) -> list[str]:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv:
        return [uv, "run", "--no-sync", *argv]
    # Without uv on PATH the same console scripts from this environment.
    return [str(Path(sys.executable).parent / argv[0]), *argv[1:]]


@pytest.fixture
def processes(
    redis_url: str, queue_prefix: str, tmp_path: Path
) -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    port = free_port()
    env = dict(os.environ) | {
        "REDIS_URL": redis_url,
        "QUEUE_PREFIX": queue_prefix,
        "API_PORT": str(port),
        "FORGESTACK_ADMIN_API_KEY": KEY,
        "FORGESTACK_DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "INFO",
    }
    env.pop("DATABASE_URL", None)
    logs = [(tmp_path / f"{name}.log").open("wb") for name in ("api", "worker")]
    procs = [
        subprocess.Popen(_command(*argv), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        for argv, log in zip((("api",), ("arq", "worker.WorkerSettings")), logs, strict=True)
    ]
    try:
        yield port, procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


def _wait_for_api(client: httpx.Client, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), "a process exited during start"
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the API did not become ready")


def test_job_enqueued_over_http_completes_with_its_result(
    processes: tuple[int, list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    port, procs = processes
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=5) as client:
        _wait_for_api(client, procs)
        response = client.post(
            "/api/v1/queues/my-new-job/jobs",
            json={"data": {"user_id": "e2e", "action": "greet", "payload": {"k": "v"}}},
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        deadline = time.monotonic() + 30
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        while job["state"] != "completed" and time.monotonic() < deadline:
            assert job["state"] in ("waiting", "active"), job
            time.sleep(0.05)
            job = client.get(f"/api/v1/jobs/{job_id}").json()
    logs = "\n".join((tmp_path / f"{n}.log").read_text() for n in ("api", "worker"))
    assert job["state"] == "completed", logs
    assert job["result"]["success"] is True
    assert job["data"] == {"user_id": "e2e", "action": "greet", "payload": {"k": "v"}}
    assert KEY not in logs
