"""An HTTP server under test in its own process group: started, waited for, read (CPU and RSS of
every process of its tree, from /proc) and stopped. uvicorn with `--workers N` is a supervisor
plus N spawned workers; the figures per worker are those of the processes that serve requests."""

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found += [int(c) for c in text]
    except OSError:
        pass
    return found


def tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += _children(current)
    return out


def cpu_s(pid: int) -> float:
    """User + system CPU of one process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_mib(pid: int) -> float:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except OSError:
        return 0.0
    return pages * _PAGE / 2**20


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    workers: int

    def tree_cpu_s(self) -> float:
        return sum(cpu_s(pid) for pid in tree(self.proc.pid))

    def serving_pids(self) -> list[int]:
        """The processes that serve requests: the single process, or the supervisor's workers
        (largest RSS first: uvicorn's spawn start-up also leaves a small resource tracker)."""
        pids = tree(self.proc.pid)
        if self.workers == 1:
            return [self.proc.pid]
        workers = sorted(pids[1:], key=rss_mib, reverse=True)
        return workers[: self.workers]

    def rss_per_worker_mib(self) -> list[float]:
        return [rss_mib(pid) for pid in self.serving_pids()]


@contextmanager
def http_server(
    cmd: list[str], *, env: dict[str, str], cwd: Path, port: int, workers: int, ready_path: str,
    log: Path,
) -> Iterator[Server]:  # fmt: skip
    """Started in a new session (its whole group is signalled on exit); ready once `ready_path`
    answers 200 and, with several workers, once they have all started."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(proc=proc, port=port, workers=workers)
    try:
        _wait_ready(server, ready_path, log)
        yield server
    finally:
        _stop(proc)


def _wait_ready(server: Server, path: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    url = f"http://127.0.0.1:{server.port}{path}"
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-3000:]}")
        try:
            ok = httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            ok = False
        if ok and (server.workers == 1 or len(tree(server.proc.pid)) > server.workers):
            # A second worker may still be importing when the first answers: give it time.
            time.sleep(1.0 if server.workers > 1 else 0)
            return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {server.port} not ready in 60 s: {log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
