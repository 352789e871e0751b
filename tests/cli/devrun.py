"""Drives a real `forgestack dev` process for the tests: its output, its process tree, its end."""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def dev_command(*, via_uv: bool) -> list[str]:
    """`uv run forgestack dev` as the README says, or the same program without uv's wrapper."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if via_uv and uv:
        return [uv, "run", "--project", str(ROOT), "--no-sync", "forgestack", "dev"]
    return [sys.executable, "-m", "forgestack_cli", "dev"]


def dev_env(data_dir: Path, api_port: int, **extra: str) -> dict[str, str]:
    """The test's environment without anything that would stop dev from embedding defaults."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "DATABASE_URL", "FORGESTACK_ADMIN_API_KEY", "SMTP_HOST"}
    }
    env |= {
        "FORGESTACK_DATA_DIR": str(data_dir),
        "API_PORT": str(api_port),
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    return env | extra


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) from /proc, or None when the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def descendants(root: int) -> dict[int, str]:
    """Every live process below `root`, with its command line."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents[int(entry.name)] = stat[1]
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                except (FileNotFoundError, ProcessLookupError):
                    continue
                found[pid] = cmd.decode(errors="replace").strip()
                frontier.append(pid)
    return found


@dataclass
class DevRun:
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @classmethod
    def start(cls, argv: list[str], env: Mapping[str, str], cwd: Path) -> "DevRun":
        # Its own session, as a terminal gives a shell job: a group SIGINT is a Ctrl-C.
        proc = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        run = cls(proc=proc)
        run._reader = threading.Thread(target=run._read, daemon=True)
        run._reader.start()
        return run

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = regex.search(line)
                if match:
                    return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}; output:\n{self.output}")

    def ctrl_c(self) -> None:
        """What a terminal does: SIGINT to the whole foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return code

    def kill_everything(self, pids: list[int]) -> None:
        """Cleanup after a failed test, so a broken supervisor leaves nothing running."""
        for pid in [self.proc.pid, *pids]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
