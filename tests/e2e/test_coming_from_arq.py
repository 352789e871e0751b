"""The README's "Coming from arq" example, run as written: its two files are taken from the
README, the worker through arq's CLI, against a Redis of its own (the example's default prefix)."""

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, start_redis_server

ROOT = Path(__file__).resolve().parents[2]


def readme_file(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Coming from arq") :]
    match = re.search(rf"```python\n(# {re.escape(name)}:.*?)```", section, re.S)
    assert match, f"no {name} block in the README's Coming from arq section"
    return match.group(1)


@pytest.fixture
def own_redis() -> Iterator[str]:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="fs-arq-example-"))
    proc = start_redis_server(port, workdir)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_arq_example_runs_unchanged(tmp_path: Path, own_redis: str) -> None:
    (tmp_path / "tasks.py").write_text(readme_file("tasks.py"))
    (tmp_path / "enqueue.py").write_text(readme_file("enqueue.py"))
    env = {k: v for k, v in os.environ.items() if k not in {"QUEUE_PREFIX", "PYTHONPATH"}}
    env |= {"REDIS_URL": own_redis, "PYTHONUNBUFFERED": "1"}
    producer = subprocess.Popen(
        [sys.executable, "enqueue.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert producer.stdout is not None
        first = producer.stdout.readline().strip()
        assert first == "JobStatus.queued JobStatus.deferred None", producer.stderr
        worker = subprocess.run(
            [sys.executable, "-m", "arq", "tasks.WorkerSettings", "--burst"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert worker.returncode == 0, worker.stdout + worker.stderr
        out, err = producer.communicate(timeout=30)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
    assert producer.returncode == 0, err
    assert out.strip() == "{'words': 4, 'try': 1} reminded 42"
