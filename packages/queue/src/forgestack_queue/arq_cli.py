"""How `uv run arq worker.WorkerSettings` ends up running a ForgeWorker.

Three names in arq are rebound, each looked up by arq when its CLI runs (arq 0.28; tests in
tests/worker/test_arq_internals.py fail loudly if any of them moves):

- `arq.worker.Worker`: `create_worker` builds whatever it names, so the CLI builds `CliWorker`.
- `arq.cli.default_log_config`: arq's own stream handler would print every arq line a second
  time beside loguru's (which already receives arq's records); ours routes them to loguru only.
- `CliWorker.async_run` after a `--watch` reload re-executes the command, since arq's reload
  restarts the same worker object on the code it imported at start.
"""

import inspect
import os
import sys
from signal import Signals
from typing import Any

import arq.cli
import arq.worker

from .worker import _ARQ_WORKER, ForgeWorker


def _signature() -> inspect.Signature:
    """arq's CLI keeps only WorkerSettings attributes named in the worker's signature: list ours too."""
    base = inspect.signature(_ARQ_WORKER)
    extra = [
        p
        for name, p in inspect.signature(ForgeWorker.__init__).parameters.items()
        if name not in base.parameters and p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    return base.replace(parameters=[*base.parameters.values(), *extra])


ForgeWorker.__signature__ = _signature()  # type: ignore[attr-defined]


class CliWorker(ForgeWorker):
    """The worker arq's CLI builds: a ForgeWorker whose `--watch` reload runs the edited code."""

    _reloading = False

    def handle_sig(self, signum: Signals) -> None:
        # arq's --watch sends SIGUSR1 to itself this way before it restarts the worker.
        if signum == Signals.SIGUSR1 and self._handle_signals:
            self._reloading = True
        super().handle_sig(signum)

    async def async_run(self) -> None:
        if self._reloading:
            # The old worker has closed (jobs released, pool closed): start the same command
            # again so every module is imported afresh from the edited files.
            sys.stdout.flush()
            sys.stderr.flush()
            os.execv(sys.executable, sys.orig_argv)  # noqa: S606 (our own command line)
        await super().async_run()


def log_config(verbose: bool) -> dict[str, Any]:
    """arq's records propagate to the root logger, which loguru's intercept handler owns."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {
            "arq": {"handlers": [], "level": "DEBUG" if verbose else "INFO", "propagate": True}
        },
    }


def use_forge_worker() -> None:
    """Makes `arq worker.WorkerSettings` build a ForgeWorker and log through loguru. Idempotent."""
    arq.worker.Worker = CliWorker  # type: ignore[misc]
    arq.cli.default_log_config = log_config  # type: ignore[attr-defined]
