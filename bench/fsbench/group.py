"""Starts worker processes, releases them at once, collects their reports; never leaves one behind."""

import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from .workerproc import WorkerSpec, worker_process

_CTX = multiprocessing.get_context("spawn")


class WorkerGroup:
    def __init__(
        self, spec: WorkerSpec | Any, count: int, target: Callable[..., None] = worker_process
    ) -> None:
        """`target(spec, ready, start, mark, stop, out)` runs in each process (workerproc's by
        default; another module's worker must follow the same protocol)."""
        self.spec = spec
        self.ready = [_CTX.Event() for _ in range(count)]
        self.start_signal = _CTX.Event()
        self.stop_signal = _CTX.Event()
        self.mark_signal = _CTX.Event()
        self.out: Any = _CTX.Queue()
        self.procs: list[BaseProcess] = [
            _CTX.Process(
                target=target,
                args=(spec, ready, self.start_signal, self.mark_signal, self.stop_signal, self.out),
                daemon=True,
            )
            for ready in self.ready
        ]
        self.started_at = 0.0

    def __enter__(self) -> "WorkerGroup":
        try:
            for proc in self.procs:
                proc.start()
            for ready in self.ready:
                if not ready.wait(60):
                    raise RuntimeError("a worker process did not get ready within 60 s")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def go(self) -> float:
        """Releases every worker; returns the wall-clock start the drain is measured from."""
        self.started_at = time.time()
        self.start_signal.set()
        return self.started_at

    def mark(self) -> None:
        """Long-running workers count what they send from here on (as well as since the start)."""
        self.mark_signal.set()

    def stop(self) -> None:
        self.mark_signal.set()
        self.stop_signal.set()

    def results(self, timeout_s: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        reports = []
        for _ in self.procs:
            report = self.out.get(timeout=max(0.1, deadline - time.monotonic()))
            if "error" in report:
                raise RuntimeError(f"worker process failed:\n{report['error']}")
            reports.append(report)
        return reports

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.mark_signal.set()
        self.stop_signal.set()
        self.start_signal.set()
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
