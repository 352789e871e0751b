"""Runs `arq <settings>` as `python -m arq` would, and at the first claim that returns a job
prints this process's CPU seconds (user + system, every thread) and wall seconds since exec,
then exits. bench/startup.py's `--cpu` measure: on a shared machine the CPU a start-up spends is
steadier than its wall time, which other processes' load stretches.

`python claim_probe.py forge|arq <module>.WorkerSettings`: `forge` probes the job layer's claim
(forgestack_queue.claims.Claimer.claim), `arq` arq's own start of the jobs it polled."""

import os
import sys
import time
from collections.abc import Callable
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from importlib.util import find_spec
from types import ModuleType
from typing import Any

TARGETS = {
    "forge": ("forgestack_queue.claims", "Claimer", "claim"),
    "arq": ("arq.worker", "Worker", "start_jobs"),
}


IMPORTED: list[float] = []
"""CPU seconds when the settings' module had been imported (arq's own import included)."""


def report() -> None:
    cpu = time.process_time()  # this process's CPU, every thread's, since exec
    wall = time.time() - float(os.environ["PROBE_EXEC_AT"])
    print(f"{cpu:.4f} {wall:.4f} {IMPORTED[0] if IMPORTED else 0.0:.4f}", flush=True)
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
    """Patches the target module right after it executes, wherever it is first imported, and
    notes when the settings' module has been imported."""

    def __init__(self, kind: str, settings_module: str) -> None:
        self.kind = kind
        self.name, self.cls, self.method = TARGETS[kind]
        self.settings_module = settings_module

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        if fullname == self.settings_module:
            return self._wrapped(fullname, lambda _: IMPORTED.append(time.process_time()))
        if fullname == self.name:
            return self._wrapped(
                fullname, lambda module: patch(module, self.cls, self.method, self.kind)
            )
        return None

    def _wrapped(self, fullname: str, after: Callable[[ModuleType], None]) -> ModuleSpec:
        """The spec the other finders give, its module followed by `after` once executed."""
        sys.meta_path.remove(self)
        try:
            spec = find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        assert spec is not None
        assert spec.loader is not None
        loader: Loader = spec.loader
        exec_module = loader.exec_module

        def exec_then(module: ModuleType) -> None:
            exec_module(module)
            after(module)

        loader.exec_module = exec_then  # type: ignore[method-assign]
        return spec


if __name__ == "__main__":
    kind, settings = sys.argv[1], sys.argv[2]
    sys.meta_path.insert(0, _Finder(kind, settings.rpartition(".")[0]))
    sys.argv = ["arq", settings]
    sys.path.insert(0, os.getcwd())
    del sys.path[1]  # this script's directory: the worker sees the path `python -m arq` gives it
    from arq.cli import cli

    cli()
