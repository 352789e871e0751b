"""Machine notes for RESULTS.md: what the figures depend on, and no local paths."""

import hashlib
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def job_layer_revision(repo: Path) -> str:
    """The commit the job layer was last changed in, and whether it had uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        last = git("log", "-1", "--format=%h %s", "--", "packages/queue")
        dirty = git("status", "--porcelain", "--", "packages/queue")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"`{last}`" + (", plus uncommitted changes" if dirty else "")


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def notes(redis_version: str, redis_kind: str) -> list[str]:
    return [
        f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs (nproc)",
        f"OS: {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, arq {_version('arq')}, redis-py {_version('redis')}, "
        f"hiredis {_version('hiredis')}, pydantic {_version('pydantic')}",
        f"Redis {redis_version} ({redis_kind}), a dedicated server on a free loopback port, "
        'no persistence (`--save "" --appendonly no`), TCP on 127.0.0.1',
    ]


def cpu_busy_s() -> float:
    """Seconds all CPUs of the machine spent busy (not idle, not waiting on I/O) since boot."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def job_layer_fingerprint(repo: Path) -> str:
    """A hash of the job layer's source as it is on disk (committed or not): worker processes
    import it when they start, so a change mid-run would mix two versions in one table."""
    digest = hashlib.sha256()
    for path in sorted((repo / "packages" / "queue" / "src").rglob("*")):
        if path.is_file() and path.suffix in {".py", ".lua"}:
            digest.update(path.relative_to(repo).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
