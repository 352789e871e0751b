"""`forgestack dev` as a developer runs it: a job completes, and every way it stops leaves no
process behind."""

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.devrun import DevRun, alive, descendants, dev_command, dev_env
from tests.conftest import free_port

STOP_WITHIN_S = 10.0
KEY_LINE = r"Admin API key\s+(\S+)"


@pytest.fixture
def runs() -> Iterator[list[tuple[DevRun, list[int]]]]:
    """Registered runs and their children are killed at teardown whatever the test did."""
    started: list[tuple[DevRun, list[int]]] = []
    yield started
    for run, pids in started:
        run.kill_everything(pids)


def _start(
    runs: list[tuple[DevRun, list[int]]], tmp_path: Path, *, via_uv: bool = False, **extra: str
) -> tuple[DevRun, int, list[int]]:
    port = free_port()
    env = dev_env(tmp_path / "data", port, **extra)
    run = DevRun.start(dev_command(via_uv=via_uv), env, cwd=tmp_path)
    pids: list[int] = []
    runs.append((run, pids))
    return run, port, pids


def _tree(run: DevRun, pids: list[int]) -> dict[int, str]:
    tree = descendants(run.proc.pid)
    pids.extend(tree)
    return tree


def _enqueue_and_wait(port: int, key: str) -> dict[str, object]:
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=5) as client:
        response = client.post(
            "/api/v1/queues/my-new-job/jobs",
            json={"data": {"user_id": "dev-test", "action": "greet"}},
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            job: dict[str, object] = client.get(f"/api/v1/jobs/{job_id}").json()
            if job["state"] == "completed":
                return job
            time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not complete: {job}")


def _assert_all_gone(pids: list[int]) -> None:
    survivors = [pid for pid in pids if alive(pid)]
    assert survivors == [], f"processes left behind: {survivors}"


def test_ctrl_c_after_a_completed_job_leaves_nothing_behind(
    runs: list[tuple[DevRun, list[int]]], tmp_path: Path
) -> None:
    run, port, pids = _start(runs, tmp_path, via_uv=True)
    key = run.wait_for(KEY_LINE).group(1)
    run.wait_for(r"Press Ctrl-C to stop")
    assert run.wait_for(r"Redis\s+redis://127\.0\.0\.1:\d+/0 \(embedded")
    assert run.wait_for(rf"API docs\s+http://127\.0\.0\.1:{port}/docs")

    job = _enqueue_and_wait(port, key)
    assert job["result"] is not None
    assert (tmp_path / "data" / "redis").is_dir()

    tree = _tree(run, pids)
    commands = " | ".join(tree.values())
    assert "redis-server" in commands
    assert "forgestack_api" in commands
    assert "arq worker.WorkerSettings" in commands

    started = time.monotonic()
    run.ctrl_c()
    assert run.wait(timeout=STOP_WITHIN_S + 5) == 0, run.output
    assert time.monotonic() - started < STOP_WITHIN_S
    _assert_all_gone(pids)


def test_sigterm_stops_everything(runs: list[tuple[DevRun, list[int]]], tmp_path: Path) -> None:
    run, _port, pids = _start(runs, tmp_path)
    run.wait_for(r"Press Ctrl-C to stop")
    assert len(_tree(run, pids)) == 4  # redis, mail catcher, api, worker
    run.proc.send_signal(signal.SIGTERM)
    assert run.wait(timeout=STOP_WITHIN_S) == 0, run.output
    _assert_all_gone(pids)


def test_a_dying_child_stops_everything_with_failure(
    runs: list[tuple[DevRun, list[int]]], tmp_path: Path
) -> None:
    run, _port, pids = _start(runs, tmp_path)
    run.wait_for(r"Press Ctrl-C to stop")
    tree = _tree(run, pids)
    worker = next(pid for pid, cmd in tree.items() if "arq worker.WorkerSettings" in cmd)
    os.kill(worker, signal.SIGKILL)
    assert run.wait(timeout=STOP_WITHIN_S) == 1
    assert "worker" in run.output and "exited with code -9" in run.output
    _assert_all_gone(pids)


def test_configured_redis_and_key_are_used_not_replaced(
    runs: list[tuple[DevRun, list[int]]], tmp_path: Path, redis_url: str, queue_prefix: str
) -> None:
    key = "my-own-dev-key"
    run, port, pids = _start(
        runs,
        tmp_path,
        REDIS_URL=redis_url,
        FORGESTACK_ADMIN_API_KEY=key,
        QUEUE_PREFIX=queue_prefix,
    )
    run.wait_for(r"Press Ctrl-C to stop")
    assert key not in run.output
    assert run.wait_for(r"Admin API key\s+from FORGESTACK_ADMIN_API_KEY")
    assert run.wait_for(r"Redis\s+redis://.*\(REDIS_URL\)")
    tree = _tree(run, pids)
    assert not any("redis-server" in cmd for cmd in tree.values())
    assert _enqueue_and_wait(port, key)["state"] == "completed"
    run.ctrl_c()
    assert run.wait(timeout=STOP_WITHIN_S) == 0
    _assert_all_gone(pids)


def test_busy_api_port_fails_clearly_and_cleans_up(
    runs: list[tuple[DevRun, list[int]]], tmp_path: Path
) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        env = dev_env(tmp_path / "data", port)
        run = DevRun.start(dev_command(via_uv=False), env, cwd=tmp_path)
        runs.append((run, []))
        assert run.wait(timeout=30) == 1
    assert f"127.0.0.1:{port} is in use" in run.output
    assert "API_PORT" in run.output
    assert descendants(run.proc.pid) == {}
