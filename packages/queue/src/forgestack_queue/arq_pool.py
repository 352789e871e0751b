"""`ForgeArqRedis`: arq's pool whose `enqueue_job` goes through our atomic add.

An arq app's `await redis.enqueue_job("download", url, _defer_by=10)` keeps working: the function
name is the queue name, the call is one Lua `add` (no WATCH/MULTI round trips), and the answer is
arq's `Job` (a `ForgeJob`) or None when `_job_id` names an existing job, as in arq.

How arq's keyword arguments map onto `JobOptions`:

- `_job_id` -> `job_id` (idempotent add; an existing id answers None, as arq does).
- `_defer_until` / `_defer_by` -> `delay` (ms from now; both at once raise, as in arq).
- `_expires` -> `arq.expires_at` (enqueue time + `_expires`, as arq counts it): no attempt starts
  after it; the job fails visibly with the reason instead of arq's silent drop. Without
  `_expires` our jobs do not expire.
- `_job_try` -> `arq.job_try`: the first attempt counts as that try against `max_tries`.
- `_queue_name` is refused: a job's queue is its function name here.

A queue the pool has a contract for (the catalog) takes one payload: a model instance, a dict,
or keyword arguments, validated against the contract's data model before anything is written,
and gets the contract's default options. Any other function name is an arq-style call stored as
`{"args": [...], "kwargs": {...}}` (JSON, so arguments must be JSON-serialisable).
"""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from arq.connections import ArqRedis, RedisSettings
from arq.connections import create_pool as arq_create_pool
from arq.utils import timestamp_ms, to_ms, to_unix_ms
from pydantic import BaseModel

from .arq_job import ForgeJob
from .errors import JobIdInUseError
from .options import ArqCallOptions, JobOptions
from .producer import Queue
from .serializer import arq_job_deserializer, arq_job_serializer

_NO_CONTRACT = JobOptions()


class QueueContract(Protocol):
    """A queue's payload model, result model and default options (the catalog's `QueueSpec`)."""

    @property
    def data_model(self) -> type[BaseModel]: ...

    @property
    def result_model(self) -> type[BaseModel]: ...

    @property
    def defaults(self) -> JobOptions: ...


class ForgeArqRedis(ArqRedis):
    queue_prefix: str = "fs"
    contracts: Mapping[Any, QueueContract] = {}

    def configure(self, *, queue_prefix: str, contracts: Mapping[Any, QueueContract]) -> None:
        self.queue_prefix = queue_prefix
        # str keys: a StrEnum key hashes by member name, so look-ups by wire name would miss.
        self.contracts = {str(name): contract for name, contract in contracts.items()}
        self._queues: dict[str, Queue] = {}

    def queue(self, name: str) -> Queue:
        """One `Queue` handle per name, created on first use and shared by every call."""
        queues = self.__dict__.setdefault("_queues", {})
        if name not in queues:
            queues[name] = Queue(self, name, prefix=self.queue_prefix)
        found: Queue = queues[name]
        return found

    async def enqueue_job(
        self,
        function: str,
        *args: Any,
        _job_id: str | None = None,
        _queue_name: str | None = None,
        _defer_until: datetime | None = None,
        _defer_by: int | float | timedelta | None = None,
        _expires: int | float | timedelta | None = None,
        _job_try: int | None = None,
        **kwargs: Any,
    ) -> ForgeJob | None:
        if _queue_name is not None and _queue_name != function:
            raise TypeError(
                f"_queue_name={_queue_name!r}: ForgeStack queues jobs by function name "
                f"({function!r}); run the function's handler in the worker that should serve it"
            )
        if _defer_until and _defer_by:
            raise RuntimeError("use either 'defer_until' or 'defer_by' or neither, not both")
        contract = self.contracts.get(function)
        model = None if contract is None else contract.data_model
        data = payload_for(function, model, args, kwargs)
        now = timestamp_ms()
        run_at = (
            to_unix_ms(_defer_until) if _defer_until is not None else now + (to_ms(_defer_by) or 0)
        )
        update: dict[str, Any] = {}
        if run_at > now:
            update["delay"] = run_at - now
        if _job_id is not None:
            JobOptions(job_id=_job_id)  # validates the id: a bad one raises before Redis
            update["job_id"] = _job_id
        if _expires is not None or _job_try is not None:
            expires_ms = to_ms(_expires)
            update["arq"] = ArqCallOptions(
                expires_at=None if expires_ms is None else now + expires_ms,  # as arq: from enqueue
                job_try=_job_try or 1,
            )
        base = contract.defaults if contract is not None else _NO_CONTRACT
        # The plain case reuses the contract's options object, whose JSON the producer caches.
        options = base.model_copy(update=update) if update else base
        try:
            added = await self.queue(function).add(data, options)
        except JobIdInUseError:
            return None  # arq's answer for an id that exists, whichever queue holds it
        if not added.created:
            return None
        return self.job(added.id, function)

    def job(self, job_id: str, function: str) -> ForgeJob:
        """arq's `Job(job_id, redis)` for one of our jobs; the function name is its queue."""
        contract = self.contracts.get(function)
        return ForgeJob(
            job_id,
            self,
            queue=function,
            prefix=self.queue_prefix,
            result_model=None if contract is None else contract.result_model,
        )


def payload_for(
    function: str,
    data_model: type[BaseModel] | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """A typed queue's one payload, validated (TypeError or ValidationError); else arq's call."""
    if data_model is None:
        return {"args": list(args), "kwargs": kwargs}
    if args and (kwargs or len(args) > 1):
        raise TypeError(
            f"{function!r} takes one {data_model.__name__}: pass it, a dict, "
            "or its fields as keyword arguments"
        )
    raw = args[0] if args else kwargs
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    return data_model.model_validate(raw)  # the producer writes it as JSON


async def create_pool(
    settings: RedisSettings | None = None,
    *,
    queue_prefix: str = "fs",
    contracts: Mapping[Any, QueueContract] | None = None,
    retry: int = 0,
) -> ForgeArqRedis:
    """arq's `create_pool` (its retries, sentinel support and ping), as a `ForgeArqRedis`.

    arq builds a plain `ArqRedis`; ours shares that pool's connections, so nothing is opened
    twice, and closing ours closes them."""
    base = await arq_create_pool(
        settings,
        retry=retry,
        job_serializer=arq_job_serializer,
        job_deserializer=arq_job_deserializer,
    )
    pool = ForgeArqRedis(
        connection_pool=base.connection_pool,
        job_serializer=arq_job_serializer,
        job_deserializer=arq_job_deserializer,
    )
    pool.configure(queue_prefix=queue_prefix, contracts=contracts or {})
    return pool
