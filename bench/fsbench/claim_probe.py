"""Runs `arq <settings>` as `python -m arq` would, and at the first claim that returns a job
prints this process's CPU seconds (user + system, every thread) and wall seconds since exec,
then exits. bench/startup.py's `--cpu` measure: on a shared machine the CPU a start-up spends is
steadier than its wall time, which other processes' load stretches.

`python claim_probe.py forge|arq <module>.WorkerSettings`: `forge` probes the job layer's claim
(forgestack_queue.claims.Claimer.claim), `arq` arq's own start of the jobs it polled."""

import os
import sys
import time
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

TARGETS = {
    "forge": ("forgestack_queue.claims", "Claimer", "claim"),
    "arq": ("arq.worker", "Worker", "start_jobs"),
}


def report() -> None:
    cpu = time.process_time()  # this process's CPU, every thread's, since exec
    wall = time.time() - float(os.environ["PROBE_EXEC_AT"])
    print(f"{cpu:.4f} {wall:.4f}", flush=True)
    os._exit(0)


def patch(module: ModuleType, cls_name: str, method: str, kind: str) -> None:
    cls = getattr(module, cls_name)
    original = getattr(cls, method)

    async def probed(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = await original(self, *args, **kwargs)
        got = result[0] if kind == "forge" else args[0]
        if got:
            report()
        return result

    setattr(cls, method, probed)


class _Finder(MetaPathFinder):
    """Patches the target module right after it executes, wherever it is first imported."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name, self.cls, self.method = TARGETS[kind]

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        from importlib.util import find_spec

        spec = find_spec(fullname)
        assert spec is not None
        assert spec.loader is not None
        loader: Loader = spec.loader
        exec_module = loader.exec_module
        finder = self

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            patch(module, finder.cls, finder.method, finder.kind)

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


if __name__ == "__main__":
    kind, settings = sys.argv[1], sys.argv[2]
    sys.meta_path.insert(0, _Finder(kind))
    sys.argv = ["arq", settings]
    sys.path.insert(0, os.getcwd())
    del sys.path[1]  # this script's directory: the worker sees the path `python -m arq` gives it
    from arq.cli import cli

    cli()
