"""Workspace-wide fixtures: a real Redis (the configured one, the local one, or an embedded one),
a unique key prefix per test so tests never see each other's jobs, and settings overrides."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from forgestack_cli.embedded_redis import redis_server_binary
from forgestack_shared.settings import Settings, get_settings

pytest_plugins = ["tests.fixtures_db"]

LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def _answers(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        return bool(client.ping())
    except redis.RedisError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis_server(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            str(redis_server_binary()),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _answers(f"redis://127.0.0.1:{port}/0"):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"embedded redis on port {port} did not start")
        time.sleep(0.05)
    return proc


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL when given, else the machine's Redis, else an embedded server for the session."""
    configured = os.environ.get("REDIS_URL")
    if configured:
        yield configured
        return
    if _answers(LOCAL_REDIS):
        yield LOCAL_REDIS
        return
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="fs-redis-"))
    proc = start_redis_server(port, workdir)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def queue_prefix() -> str:
    return f"fst{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def redis(redis_url: str, queue_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        keys = [k async for k in client.scan_iter(match=f"{queue_prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
def full_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's prefetch buffer wants its whole limit at once (its size otherwise follows the
    measured rate of ended attempts, which a test of a few slow jobs never reaches)."""
    from forgestack_queue.prefetch import Prefetch

    monkeypatch.setattr(Prefetch, "target", lambda self: self.limit)


@pytest.fixture
def settings(
    redis_url: str, queue_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Settings for this test, also returned by `get_settings()` so app code sees the same."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("QUEUE_PREFIX", queue_prefix)
    monkeypatch.setenv("FORGESTACK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FORGESTACK_ADMIN_API_KEY", "test-admin-key")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    get_settings.cache_clear()
    try:
        yield get_settings()
    finally:
        get_settings.cache_clear()


SLOW_FIXTURES = frozenset(
    {
        "redis_url",
        "postgres_url",
        "sentinel_set",
        "cluster_url",
        "runs",
        "started",
        "run",
        "live_api",
        "chromium",
    }
)
"""A test that uses one of these (directly or through another fixture) needs a service or starts
processes (a live API, a browser): it is marked `slow`; `uv run pytest -m "not slow"` is the fast
lane."""
SLOW_PARAMS = frozenset({"postgresql"})
"""Parametrised fixtures that pick a backend with `request.getfixturevalue` at run time."""
PROCESS_STARTERS = frozenset({"subprocess", "start_redis_server", "DevRun", "mypy_api"})
"""What a test module imports to start processes (or a whole mypy run) of its own."""


def _is_slow(item: pytest.Item) -> bool:
    if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    if callspec is not None and SLOW_PARAMS & {str(v) for v in callspec.params.values()}:
        return True
    module = getattr(item, "module", None)
    return module is not None and bool(PROCESS_STARTERS & set(vars(module)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks by what a test uses, so no test file has to remember to mark itself."""
    for item in items:
        if _is_slow(item):
            item.add_marker(pytest.mark.slow)
