"""A fleet restarted in any order comes up by itself: the API and a worker started while Redis is
unreachable keep running, log one line per try, answer /readyz 503 (the API), and serve once
Redis starts."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port, start_redis_server

ROOT = Path(__file__).resolve().parents[2]
KEY = "e2e-admin-key"


def test_api_and_worker_started_before_redis_wait_for_it(tmp_path: Path) -> None:
    redis_port, api_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")} | {
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "QUEUE_PREFIX": "early",
        "API_PORT": str(api_port),
        "FORGESTACK_ADMIN_API_KEY": KEY,
        "FORGESTACK_DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "INFO",
    }
    logs = {name: tmp_path / f"{name}.log" for name in ("api", "worker")}
    argv = {
        "api": [sys.executable, "-m", "forgestack_api"],
        "worker": [sys.executable, "-m", "arq", "worker.WorkerSettings"],
    }
    procs = {
        name: subprocess.Popen(
            argv[name], cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
        )
        for name, log in logs.items()
    }
    redis = None
    headers = {"Authorization": f"Bearer {KEY}"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers=headers) as client:
            deadline = time.monotonic() + 60
            while True:
                assert all(p.poll() is None for p in procs.values()), "a process exited"
                try:
                    ready = client.get("/readyz", timeout=5)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the API did not answer"
                    time.sleep(0.2)
            assert ready.status_code == 503
            assert "redis" in ready.json()["failing"]
            time.sleep(12)  # longer than arq's own retries (and the old one-line exit) last
            assert all(p.poll() is None for p in procs.values()), "a process exited"
            for name, log in logs.items():
                waits = [ln for ln in log.read_text().splitlines() if "waiting for Redis" in ln]
                assert 2 <= len(waits) <= 12, (name, waits)  # backoff: not a line per attempt
            redis = start_redis_server(redis_port, tmp_path)
            deadline = time.monotonic() + 30
            while client.get("/readyz", timeout=5).status_code != 200:
                assert time.monotonic() < deadline, "the API did not become ready"
                time.sleep(0.2)
            job = client.post(
                "/api/v1/queues/my-new-job/jobs",
                json={"data": {"user_id": "early", "action": "greet"}},
                timeout=5,
            )
            assert job.status_code == 202, job.text
            deadline = time.monotonic() + 30
            while (state := client.get(f"/api/v1/jobs/{job.json()['id']}").json()["state"]) != (
                "completed"
            ):
                assert time.monotonic() < deadline, (state, logs["worker"].read_text())
                time.sleep(0.1)
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
