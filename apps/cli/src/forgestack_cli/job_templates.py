"""The new files `forgestack new-job` writes: payload and result models, the handler and its
tests. Each is the shape a hand-written job in this repository has, so it passes ruff, mypy
strict and its own tests as generated."""

from dataclasses import dataclass

TYPES: dict[str, tuple[str, str, str]] = {
    # type -> (annotation, value the handler returns, example value tests send)
    "str": ("str", '""', '"example"'),
    "int": ("int", "0", "1"),
    "float": ("float", "0.0", "1.5"),
    "bool": ("bool", "True", "True"),
    "datetime": ("datetime", "datetime.now(UTC)", "datetime.now(UTC)"),
}
DEFAULT_FIELDS = (("message", "str"),)
DEFAULT_RESULT = (("processed_at", "datetime"),)


@dataclass(frozen=True)
class JobNames:
    """One name, spelled the five ways the code needs it."""

    queue: str  # send-sms: the queue's wire name

    @property
    def module(self) -> str:
        return self.queue.replace("-", "_")

    @property
    def const(self) -> str:
        return self.module.upper()

    @property
    def model(self) -> str:
        return "".join(part.capitalize() for part in self.queue.split("-"))

    @property
    def handler(self) -> str:
        return f"handle_{self.module}"


Fields = tuple[tuple[str, str], ...]


def _uses_datetime(*fields: Fields) -> bool:
    return any(t == "datetime" for group in fields for _, t in group)


def _values(fields: Fields, column: int) -> str:
    return ", ".join(f"{name}={TYPES[t][column]}" for name, t in fields)


def models_module(n: JobNames, data: Fields, result: Fields) -> str:
    imports = "from datetime import datetime\n\n" if _uses_datetime(data, result) else ""
    data_lines = "".join(f"    {name}: {TYPES[t][0]}\n" for name, t in data)
    result_lines = "".join(f"    {name}: {TYPES[t][0]}\n" for name, t in result)
    return (
        f'"""Payload and result of the `{n.queue}` queue."""\n\n'
        f"{imports}from pydantic import BaseModel\n\n\n"
        f"class {n.model}Data(BaseModel):\n"
        f'    """Validated by the API before enqueue and by the worker before the handler."""\n\n'
        f"{data_lines}\n\n"
        f"class {n.model}Result(BaseModel):\n"
        f"{result_lines}"
    )


def handler_module(n: JobNames, result: Fields) -> str:
    dt = "from datetime import UTC, datetime\n\n" if _uses_datetime(result) else ""
    return f'''"""The `{n.queue}` job."""

{dt}from forgestack_queue.job import Job
from forgestack_shared.jobs.{n.module} import {n.model}Data, {n.model}Result


class {n.model}Error(RuntimeError):
    """A transient failure: the queue retries it while attempts remain. Raise
    `forgestack_queue.errors.UnrecoverableError` instead for one no retry can fix."""


async def _process(data: {n.model}Data) -> {n.model}Result:
    return {n.model}Result({_values(result, 1)})


async def {n.handler}(job: Job[{n.model}Data]) -> {n.model}Result:
    log = job.logger  # bound to the job's id, queue and attempt
    log.info("{n.queue} started")
    try:
        result = await _process(job.data)
    except {n.model}Error as exc:
        log.warning("{n.queue} failed, retried while attempts remain: {{}}", exc)
        raise
    log.info("{n.queue} done")
    return result
'''


def handler_test_module(n: JobNames, data: Fields) -> str:
    dt = "from datetime import UTC, datetime\n\n" if _uses_datetime(data) else ""
    return f'''"""The `{n.queue}` handler alone, then through the API's door and a real worker."""

{dt}from forgestack_api.queue_service import QueueService
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_job, run_burst_worker
from forgestack_shared.catalog import {n.const}
from forgestack_shared.jobs.{n.module} import {n.model}Data, {n.model}Result
from forgestack_worker.handlers.{n.module} import {n.handler}
from forgestack_worker.registry import HANDLERS
from redis.asyncio import Redis


def _data() -> {n.model}Data:
    return {n.model}Data({_values(data, 2)})


async def test_the_handler_returns_its_result() -> None:
    result = await {n.handler}(make_job(_data(), queue="{n.queue}"))
    assert isinstance(result, {n.model}Result)


async def test_a_job_added_with_the_catalog_defaults_completes(
    redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    service = QueueService(redis, prefix=queue_prefix)
    added = await service.add({n.const}, _data())
    await run_burst_worker(redis_url, HANDLERS, prefix=queue_prefix)
    record = await service.get_job(added.id)
    assert record.state is JobState.COMPLETED, record
    assert record.options.attempts == {n.const}.defaults.attempts
    {n.model}Result.model_validate(record.result)
'''
