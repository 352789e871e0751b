"""arq's own formats, for calls a plain arq pool wrote: its job record in, its result out.

arq 0.28 keeps a call as `arq:job:<id>` = serializer({t, f, a, k, et}) and answers it with
`arq:result:<id>` = serializer({t, f, a, k, et, s, r, st, ft, q, id}); both go through arq's own
`deserialize_job_raw` and `serialize_result` here, so a plain pool's `Job` reads what we write.

Pickle, arq's default serializer, runs code of the writer's choosing when it is loaded: anyone able
to write to Redis could run anything in every worker. The job layer otherwise never unpickles
(serializer.py), so a pickled call is loaded only where the worker allows it (`arq_intake_pickle`);
refused, it fails visibly with the reason. Writing pickle is harmless, so the answer to a pickled
call is pickled, for the pool that sent it to read.
"""

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from arq.jobs import DeserializationError, deserialize_job_raw, serialize_result
from arq.worker import JobExecutionFailed

Serializer = Callable[[dict[str, Any]], bytes]
Deserializer = Callable[[bytes], dict[str, Any]]

_PICKLE_PROTOCOLS = frozenset(range(2, 6))

PICKLE_REFUSED = (
    "the arq job is pickled (arq's default serializer) and this worker does not unpickle: give "
    "create_pool a JSON job_serializer, or allow pickle in the worker (WorkerSettings."
    "arq_intake_pickle, WORKER_ARQ_PICKLE=true) if only trusted code can write to this Redis"
)


class RefusedCallError(ValueError):
    """A call that cannot be read: the reason becomes the job's failure."""


@dataclass(frozen=True, slots=True)
class ArqCallRecord:
    """One `enqueue_job` call as arq stored it."""

    function: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    job_try: int | None
    enqueued_at: int


def is_pickle(raw: bytes) -> bool:
    """`pickle.dumps` (protocol 2 on) starts with PROTO n; JSON starts with `{`, and msgpack's
    five-entry map (0x85) differs in its first byte."""
    return len(raw) > 1 and raw[0] == 0x80 and raw[1] in _PICKLE_PROTOCOLS


def decode_call(raw: bytes, *, deserializer: Deserializer, allow_pickle: bool) -> ArqCallRecord:
    """arq's own reader, with the worker's deserializer (never arq's pickle default: the caller
    passes one); pickle only where allowed."""
    if is_pickle(raw):
        if not allow_pickle:
            raise RefusedCallError(PICKLE_REFUSED)
        deserializer = pickle.loads
    try:
        function, args, kwargs, job_try, enqueued_at = deserialize_job_raw(
            raw, deserializer=deserializer
        )
    except DeserializationError as exc:
        raise RefusedCallError(f"the arq job does not deserialize: {exc.__cause__ or exc}") from exc
    if (
        not isinstance(function, str)
        or not isinstance(args, list | tuple)
        or not isinstance(kwargs, dict)
        or not isinstance(enqueued_at, int)
        or not (job_try is None or isinstance(job_try, int))
    ):
        raise RefusedCallError("the arq job is not an arq call {f, a, k, t, et}")
    return ArqCallRecord(function, tuple(args), kwargs, job_try, enqueued_at)


def call_of(data: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """args/kwargs as arq shows them: an arq-style call's own, else the payload as one argument."""
    if isinstance(data, dict) and set(data) == {"args", "kwargs"}:
        return tuple(data["args"]), dict(data["kwargs"])
    return (data,), {}


@dataclass(frozen=True, slots=True)
class Answer:
    """What arq's worker would store when a call ends."""

    arq_id: str
    function: str
    data: Any
    job_try: int
    enqueued_at: int
    success: bool
    result: Any
    """The (typed) result, or the failure's reason."""
    started_at: int
    finished_at: int
    queue_name: str


def encode_answer(answer: Answer, *, pickled: bool, serializer: Serializer | None) -> bytes | None:
    """arq's `serialize_result`. A failure is arq's `JobExecutionFailed(reason)` in pickle (what
    `Job.result()` raises); other serializers cannot carry an exception, so the reason text goes
    instead, and arq's `Job.result()` raises it as `SerializationError(reason)`."""
    result = answer.result
    if not answer.success and pickled:
        result = JobExecutionFailed(answer.result)
    args, kwargs = call_of(answer.data)
    return serialize_result(
        answer.function,
        args,
        kwargs,
        answer.job_try,
        answer.enqueued_at,
        answer.success,
        result,
        answer.started_at,
        answer.finished_at,
        f"{answer.arq_id}:{answer.function}",
        answer.queue_name,
        answer.arq_id,
        serializer=pickle.dumps if pickled else serializer,
    )
