"""How `uv run arq worker.WorkerSettings` ends up running a ForgeWorker."""

import inspect

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


def use_forge_worker() -> None:
    """Makes `arq worker.WorkerSettings` build a ForgeWorker.

    arq's CLI calls `arq.worker.create_worker`, which resolves the module global `Worker` when it
    runs; binding that name to our subclass is the one seam arq leaves. Idempotent."""
    arq.worker.Worker = ForgeWorker  # type: ignore[misc]
