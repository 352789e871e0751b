"""arq requires a registered function per job name (it lists them at start-up and refuses a worker
without any); ForgeWorker registers one per handler so arq's bookkeeping sees our queues."""

from typing import Any, NoReturn

from arq.worker import Function, func

from .runner import Handler


def arq_function(handler: Handler[Any, Any]) -> Function:
    """ForgeWorker runs jobs through its own claim path and never through arq's run loop (calls a
    plain `ArqRedis` puts in arq's own queue come in through arq_intake); says so if arq runs it."""

    async def not_served(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError(
            f"queue {handler.queue!r} is served by ForgeWorker: enqueue through a pool from "
            "forgestack_queue.arq_pool.create_pool (or Queue / QueueService)"
        )

    not_served.__qualname__ = f"forgestack:{handler.queue}"
    return func(not_served, name=handler.queue)
