"""Child processes that `forgestack dev` owns: each in its own process group, stopped as a group
(SIGTERM, a grace period, then SIGKILL) so nothing it started can outlive it."""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

PR_SET_PDEATHSIG = 1

# Loaded in the parent: between fork and exec the child only makes the call, never a dlopen.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if the supervisor itself is killed (even by SIGKILL)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(slots=True)
class ManagedProcess:
    """One started child. `tier` orders shutdown: higher tiers (apps) stop before lower (Redis)."""

    name: str
    popen: subprocess.Popen[bytes]
    tier: int = 1
    stopping: bool = field(default=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def signal_group(self, sig: signal.Signals) -> None:
        # The group outlives its leader when the leader forked; ESRCH means it is all gone.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    tier: int = 1,
    quiet: bool = False,
) -> ManagedProcess:
    """Starts `argv` in a new session (its own process group); a terminal's Ctrl-C reaches only
    the supervisor, which then stops the children in order."""
    output = subprocess.DEVNULL if quiet else None
    popen = subprocess.Popen(
        list(argv),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=output,
        start_new_session=True,
        # Keep the supervisor single-threaded: preexec_fn is unsafe in a threaded parent.
        preexec_fn=_die_with_parent,
    )
    return ManagedProcess(name=name, popen=popen, tier=tier)


def stop_all(processes: Sequence[ManagedProcess], *, grace_s: float = 5.0) -> None:
    """Stops tier by tier, highest first: SIGTERM the whole tier, wait up to `grace_s`, SIGKILL
    what is left, then a final SIGKILL to each group for grandchildren that outlived a leader."""
    for tier in sorted({p.tier for p in processes}, reverse=True):
        members = [p for p in processes if p.tier == tier]
        for proc in members:
            proc.stopping = True
            if proc.poll() is None:
                proc.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in members:
            remaining = max(deadline - time.monotonic(), 0.0)
            try:
                proc.popen.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                proc.signal_group(signal.SIGKILL)
                proc.popen.wait()
            proc.signal_group(signal.SIGKILL)
