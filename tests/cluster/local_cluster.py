"""A 3-master Redis Cluster on loopback for tests: three `redis-server --cluster-enabled yes`
processes on free ports (probed from 7301 up), joined by `redis-cli --cluster create`."""

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis
from forgestack_cli.embedded_redis import port_is_free

from tests.polling import wait_until

FIRST_PORT = 7301
MASTERS = 3


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: the cluster tests need Redis 7's server and CLI")
    return found


@dataclass
class LocalCluster:
    workdir: Path
    ports: list[int] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        port = FIRST_PORT
        while len(self.ports) < MASTERS:
            if port_is_free(port) and port_is_free(port + 10000):  # + the cluster bus port
                self.ports.append(port)
            port += 1
        for p in self.ports:
            folder = self.workdir / str(p)
            folder.mkdir()
            self.procs.append(
                subprocess.Popen(
                    [
                        _binary("redis-server"),
                        "--port",
                        str(p),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        f"nodes-{p}.conf",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(folder),
                        "--logfile",
                        str(folder / "log"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for p in self.ports:
            wait_until(
                lambda p=p: redis.Redis(port=p, socket_timeout=1).ping(), f"node {p}", timeout=30.0
            )
        subprocess.run(
            [
                _binary("redis-cli"),
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for p in self.ports:
            wait_until(lambda p=p: self._ok(p), f"cluster_state:ok on {p}", timeout=30.0)

    @staticmethod
    def _ok(port: int) -> bool:
        info = redis.Redis(port=port, socket_timeout=1).cluster("INFO")
        return bool(info.get("cluster_state") == "ok")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
