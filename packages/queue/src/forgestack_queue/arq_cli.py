"""How `uv run arq worker.WorkerSettings` ends up running a ForgeWorker."""

import inspect
from typing import Any

import arq.cli
import arq.worker

from .worker import ForgeWorker


def _signature() -> inspect.Signature:
    """arq's CLI keeps only WorkerSettings attributes named in the worker's signature: list ours too."""
    base = inspect.signature(ForgeWorker.__bases__[0])
    extra = [
        p
        for name, p in inspect.signature(ForgeWorker.__init__).parameters.items()
        if name not in base.parameters and p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    return base.replace(parameters=[*base.parameters.values(), *extra])


ForgeWorker.__signature__ = _signature()  # type: ignore[attr-defined]


def _no_arq_handler(verbose: bool) -> dict[str, Any]:
    """arq's CLI dictConfigs a stream handler on `arq`; its records also reach our root handler,
    so every arq line printed twice. Ours is the only handler: arq's loggers just propagate."""
    level = "DEBUG" if verbose else "NOTSET"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {"arq": {"handlers": [], "level": level, "propagate": True}},
    }


def use_forge_worker() -> None:
    """Makes `arq worker.WorkerSettings` build a ForgeWorker and log through our configuration.

    arq's CLI calls `arq.worker.create_worker` and `default_log_config`, resolving both module
    globals when it runs; binding those names is the one seam arq leaves. Idempotent."""
    arq.worker.Worker = ForgeWorker  # type: ignore[misc]
    setattr(arq.cli, "default_log_config", _no_arq_handler)  # noqa: B010 (not re-exported)
