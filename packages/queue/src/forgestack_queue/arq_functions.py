"""arq `Function`s (`func(coroutine, name=..., max_tries=..., timeout=..., keep_result=...)`) as
our handlers, so `WorkerSettings.functions` reads as arq's docs teach.

A function whose name is a queue with a contract (the catalog) is typed: its coroutine takes
`Job[Data]`, the payload validated against the contract's data model. Any other function is
called arq's way, `coroutine(ctx, *args, **kwargs)`, with the arguments `enqueue_job` stored.

What `func(...)` sets maps onto the job's options at each attempt; where it is silent, the
options the job was enqueued with (catalog defaults merged in) apply:

- `max_tries=n` -> `attempts=n`. Functions without a contract default to the worker's
  `max_tries` (arq's 5), since arq-style jobs are enqueued without a catalog entry.
- `timeout=s` -> the attempt is cancelled after s seconds and fails with "timed out after ...".
  A shorter `timeout` stored with the job still applies (the worker's watchdog).
- `keep_result=s` -> `remove_on_complete=KeepJobs(age=s)` (the stored count limit kept);
  `keep_result=0` removes at once; `keep_result_forever=True` keeps for ever.

Every handler gets arq's per-job `ctx` keys: `job_id`, `job_try`, `enqueue_time`, `score`,
`redis` (typed handlers read them as `job.ctx[...]`).
"""

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from arq.utils import timestamp_ms
from arq.worker import Function, func
from pydantic import BaseModel

from .arq_pool import ForgeArqRedis, QueueContract
from .errors import UnrecoverableError
from .job import Job
from .keys import is_cluster
from .options import ArqCallOptions, JobOptions, KeepJobs
from .progress import Reporter
from .runner import ClaimedJob, Handler, Outcome, failure

_NO_ARQ = ArqCallOptions()


class ArqCall(BaseModel):  # type: ignore[no-redef]  # pydantic's plugin: field named kwargs
    """The payload of an arq-style call: positional and keyword arguments, as JSON."""

    args: list[Any] = []
    kwargs: dict[str, Any] = {}


class JobTimeoutError(TimeoutError):
    """An attempt ran past its arq `func(timeout=)`."""


@dataclasses.dataclass(frozen=True)
class FunctionHandler(Handler[Any, Any]):
    function: Function | None = None
    default_max_tries: int | None = None
    queue_prefix: str = "fs"
    contracts: Mapping[str, QueueContract] = dataclasses.field(default_factory=dict)
    _pools: dict[int, ForgeArqRedis] = dataclasses.field(default_factory=dict, compare=False)

    def _enqueuing_pool(self, redis: Any) -> Any:
        """arq's `ctx["redis"]` enqueues follow-up jobs: make it ours, sharing the worker's pool.
        A Redis Cluster client is handed over as it is: arq's pool has no cluster form, so
        follow-ups go through `Queue` there (docs/operations/redis-topologies.md)."""
        if redis is None or isinstance(redis, ForgeArqRedis) or is_cluster(redis):
            return redis
        pool = self._pools.get(id(redis))
        if pool is None:
            pool = ForgeArqRedis(connection_pool=redis.connection_pool)
            pool.configure(queue_prefix=self.queue_prefix, contracts=self.contracts)
            self._pools.clear()
            self._pools[id(redis)] = pool
        return pool

    def options_for(self, stored: JobOptions) -> JobOptions:
        """The stored options with what `func(...)` (or the worker default) says on top."""
        update: dict[str, Any] = {}
        fn = self.function
        max_tries = fn.max_tries if fn and fn.max_tries is not None else self.default_max_tries
        if max_tries is not None:
            update["attempts"] = max_tries
        if fn and fn.timeout_s is not None:
            update["timeout"] = max(1, int(fn.timeout_s * 1000))
        if fn and fn.keep_result_forever:
            update["remove_on_complete"] = False
        elif fn and fn.keep_result_s is not None:
            rule = stored.remove_on_complete
            count = rule.count if isinstance(rule, KeepJobs) else None
            keep = int(fn.keep_result_s)
            update["remove_on_complete"] = True if keep == 0 else KeepJobs(age=keep, count=count)
        return stored.model_copy(update=update) if update else stored

    async def attempt(
        self, claimed: ClaimedJob, ctx: dict[str, Any], reporter: Reporter | None = None
    ) -> Outcome:
        opts = self.options_for(claimed.options)
        extra = opts.arq or _NO_ARQ
        spent = extra.job_try - 1
        if spent:
            # arq's _job_try: earlier tries count against max_tries.
            if opts.attempts - spent < 1:
                return failure(opts, UnrecoverableError(f"max {opts.attempts} tries exceeded"))
            opts = opts.model_copy(update={"attempts": opts.attempts - spent})
        if extra.expires_at is not None and timestamp_ms() > extra.expires_at:
            expired = datetime.fromtimestamp(extra.expires_at / 1000, UTC).isoformat()
            return failure(opts, UnrecoverableError(f"job expired at {expired} (arq _expires)"))
        # A call taken from arq's own queue was enqueued when arq's client wrote it.
        enqueued_ms = extra.enqueued_at or claimed.created_at_ms
        job_ctx = {
            **ctx,
            "job_id": claimed.id,
            "job_try": claimed.attempt + spent,
            "enqueue_time": datetime.fromtimestamp(enqueued_ms / 1000, UTC),
            "score": claimed.created_at_ms + opts.delay,
            "redis": self._enqueuing_pool(ctx.get("redis")),
        }
        if opts is not claimed.options:
            claimed = dataclasses.replace(claimed, options=opts)
        return await super().attempt(claimed, job_ctx, reporter)


def handler_from_function(
    function: Function,
    contracts: Mapping[str, QueueContract],
    *,
    default_max_tries: int,
    queue_prefix: str,
) -> FunctionHandler:
    contract = contracts.get(function.name)
    coroutine = function.coroutine
    timeout_s = function.timeout_s

    async def call(job: Job[Any]) -> Any:
        if contract is not None:
            invocation = coroutine(job)  # type: ignore[arg-type]
        else:
            invocation = coroutine(dict(job.ctx), *job.data.args, **job.data.kwargs)
        if timeout_s is None:
            return await invocation
        try:
            async with asyncio.timeout(timeout_s):
                return await invocation
        except TimeoutError as exc:
            raise JobTimeoutError(f"timed out after {timeout_s:g} s") from exc

    typed_as_is = contract is not None and timeout_s is None
    return FunctionHandler(
        queue=function.name,
        # A typed coroutine without a timeout is called directly: one coroutine frame less a job.
        fn=coroutine if typed_as_is else call,  # type: ignore[arg-type]
        data_model=contract.data_model if contract is not None else ArqCall,
        function=function,
        default_max_tries=None if contract is not None else default_max_tries,
        queue_prefix=queue_prefix,
        contracts=contracts,
    )


def handlers_from_functions(
    functions: Sequence[Function | Any],
    contracts: Mapping[Any, QueueContract],
    *,
    default_max_tries: int,
    queue_prefix: str = "fs",
) -> list[Handler[Any, Any]]:
    by_name = {str(name): contract for name, contract in contracts.items()}
    handlers: list[Handler[Any, Any]] = []
    for item in functions:
        function = item if isinstance(item, Function) else _as_function(item)
        handlers.append(
            handler_from_function(
                function, by_name, default_max_tries=default_max_tries, queue_prefix=queue_prefix
            )
        )
    return handlers


def _as_function(item: Any) -> Function:
    """A bare coroutine (or import string) in `functions`, as arq accepts too."""
    return func(item)
