"""Handlers as plain arq functions: arq requires a registered function per job name, and a job
enqueued with arq's own `enqueue_job(queue, data)` then still runs the typed handler."""

from typing import Any

from arq.worker import Function, func
from pydantic import BaseModel

from .job import Job
from .runner import Handler


def arq_function(handler: Handler[Any, Any]) -> Function:
    async def run(ctx: dict[str, Any], data: dict[str, Any]) -> Any:
        job = Job(
            id=str(ctx.get("job_id", "")),
            queue=handler.queue,
            name=handler.queue,
            data=handler.data_model.model_validate(data),
            attempt=int(ctx.get("job_try", 1)),
            ctx=ctx,
        )
        result = await handler.fn(job)
        return result.model_dump(mode="json") if isinstance(result, BaseModel) else result

    run.__qualname__ = f"forgestack:{handler.queue}"
    return func(run, name=handler.queue)
