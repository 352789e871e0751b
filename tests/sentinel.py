"""A Redis Sentinel set on loopback for tests: one master, one replica and one sentinel
(quorum 1), each a real `redis-server` process on a free port, and a master that can be killed."""

import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis
from forgestack_cli.embedded_redis import redis_server_binary

from tests.conftest import free_port
from tests.polling import wait_until

MASTER_NAME = "forgestack"
DOWN_AFTER_MS = 500


@dataclass
class SentinelSet:
    workdir: Path
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.ports['sentinel']}/{MASTER_NAME}/0"

    def client(self, role: str) -> redis.Redis:
        return redis.Redis(port=self.ports[role], socket_timeout=2)

    def _server(self, role: str, *extra: str) -> None:
        port = free_port()
        folder = self.workdir / role
        folder.mkdir()
        argv = [str(redis_server_binary())]
        if role == "sentinel":
            conf = folder / "sentinel.conf"
            master = self.ports["master"]
            conf.write_text(
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 1\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER_NAME} 5000\n"
            )
            argv += [str(conf), "--sentinel"]
        argv += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", ""]
        argv += ["--logfile", str(folder / "log"), *extra]
        self.ports[role] = port
        self.procs[role] = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        wait_until(lambda: self.client(role).ping(), f"{role} on port {port}")

    def start(self) -> "SentinelSet":
        self._server("master", "--appendonly", "yes")
        master = str(self.ports["master"])
        self._server("replica", "--appendonly", "yes", "--replicaof", "127.0.0.1", master)
        wait_until(
            lambda: self.client("replica").info("replication")["master_link_status"] == "up",
            "the replica to sync",
        )
        self._server("sentinel")
        wait_until(self._sentinel_knows_the_replica, "the sentinel to find the replica")
        return self

    def _sentinel_knows_the_replica(self) -> bool:
        replicas = self.client("sentinel").sentinel_slaves(MASTER_NAME)
        return any(r["port"] == self.ports["replica"] and not r["is_odown"] for r in replicas)

    def master_port(self) -> int:
        _host, port = self.client("sentinel").sentinel_get_master_addr_by_name(MASTER_NAME)
        return int(port)

    def kill_master(self) -> None:
        """SIGKILL, as a crashed host: the sentinel promotes the replica."""
        self.procs["master"].send_signal(signal.SIGKILL)
        self.procs["master"].wait()
        wait_until(lambda: self.master_port() == self.ports["replica"], "the failover")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
