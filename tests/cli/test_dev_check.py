"""`uv run arq worker.WorkerSettings --check` beside a running `forgestack dev`, with no extra
variables, checks the worker of that stack: dev's embedded Redis is never on the default port."""

import subprocess
import sys
import time
from pathlib import Path

from forgestack_shared.dev_redis import dev_redis_url_file

from tests.cli.devrun import DevRun, descendants, dev_command, dev_env
from tests.conftest import free_port


def _check(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arq", "worker.WorkerSettings", "--check"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_finds_the_dev_stacks_worker_without_variables(tmp_path: Path) -> None:
    env = dev_env(tmp_path / "data", free_port())
    run = DevRun.start(dev_command(via_uv=False), env, cwd=tmp_path)
    pids: list[int] = []
    try:
        run.wait_for(r"Press Ctrl-C to stop")
        pids.extend(descendants(run.proc.pid))
        url = run.wait_for(r"Redis\s+(redis://127\.0\.0\.1:\d+/0) \(embedded").group(1)
        assert dev_redis_url_file(tmp_path / "data").read_text() == url
        deadline = time.monotonic() + 30
        while (check := _check(env, tmp_path)).returncode != 0:
            assert time.monotonic() < deadline, check.stdout + check.stderr
            time.sleep(0.5)
        assert "Health check successful" in check.stdout + check.stderr
        run.ctrl_c()
        assert run.wait(timeout=20) == 0, run.output
    finally:
        run.kill_everything(pids)
    assert not dev_redis_url_file(tmp_path / "data").exists(), "a stopped stack leaves no URL"
