"""`wrk`, the load generator of `bench/http_door.py`: installed from Debian's packages when missing,
driven by a Lua script that POSTs one JSON body, its summary read back as JSON from the script's
`done` hook (exact request counts and latency percentiles, no parsing of the human report)."""

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nWRK_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


class WrkMissingError(RuntimeError):
    pass


def ensure_wrk() -> str:
    """The `wrk` binary; installed with apt-get (Debian package `wrk`) when missing and root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise WrkMissingError(
            "wrk is not installed and this is not root: run `apt-get install wrk` (Debian's "
            "package) as root, then run the bench again"
        )
    print("wrk missing: installing Debian's package with apt-get", flush=True)
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    found = shutil.which("wrk")
    if not found:
        raise WrkMissingError("apt-get installed wrk but it is not on PATH")
    return found


def write_script(path: Path, body: object, bearer: str | None) -> Path:
    """A POST of `body` on every request; the key (a scratch one) sits in the bench's temp dir."""
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {_lua_string(json.dumps(body, separators=(',', ':')))}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    if bearer:
        lines.append(f'wrk.headers["Authorization"] = {_lua_string("Bearer " + bearer)}')
    path.write_text("\n".join(lines) + "\n" + _DONE)
    return path


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    errors: int
    """Connect, read, write and timeout errors plus answers outside 2xx/3xx."""
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_s: float
    """wrk's own CPU (user + system): it shares the machine with the servers."""

    @property
    def rate(self) -> float:
        return self.requests / self.duration_s


def run_wrk(
    binary: str, url: str, script: Path, *, seconds: float, threads: int, connections: int
) -> WrkResult:
    cmd = [
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cpu_s = _wait_cpu_s(proc)
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    line = next((ln for ln in out.splitlines() if ln.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.strip() or out[-500:]}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return WrkResult(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        cpu_s=cpu_s,
    )


def _wait_cpu_s(proc: "subprocess.Popen[str]") -> float:
    """Waits for wrk and returns its own CPU (getrusage of all children would mix processes).
    Its output is one short report, so waiting before reading cannot block on a full pipe."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime
