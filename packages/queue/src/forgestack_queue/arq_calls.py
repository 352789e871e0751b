"""What a call taken from arq's own queue becomes in ours: its queue, payload and options, or a
job that fails with the reason it cannot run (forgestack_queue.arq_intake takes and adds it)."""

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from hashlib import sha256
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from .arq_functions import ArqCall
from .arq_pool import QueueContract, payload_for
from .arq_wire import (
    ArqCallRecord,
    Deserializer,
    RefusedCallError,
    Serializer,
    decode_call,
    is_pickle,
)
from .options import MAX_DELAY_MS, ArqCallOptions, JobOptions
from .runner import Handler
from .serializer import dumps

INTAKE_QUEUE = "arq-intake"
"""Failed store of calls that name no queue this worker knows, or cannot be read at all."""
SHOWN_MAX = 4000
"""Bytes of a refused call's arguments kept for the operator to read."""
_BAD_ID = re.compile(r"[^A-Za-z0-9._:@/+=-]+")


@dataclass(frozen=True, slots=True)
class IntakeSettings:
    """What the worker's settings say, read once at start."""

    arq_queue: str
    prefix: str
    handlers: Mapping[str, Handler[Any, Any]]
    contracts: Mapping[str, QueueContract]
    deserializer: Deserializer
    serializer: Serializer | None
    allow_pickle: bool
    keep_result_s: float
    keep_result_forever: bool
    interval_s: float
    lease_ms: int
    worker_id: str


@dataclass(frozen=True, slots=True)
class TakenCall:
    """One taken call, ready for our add."""

    arq_id: str
    queue: str
    name: str
    data: Any
    options: JobOptions
    arq: ArqCallOptions
    pending: int
    """The taken marker's score while the call is being added."""

    def with_arq(self, **update: Any) -> "TakenCall":
        arq = self.arq.model_copy(update=update)
        return replace(self, arq=arq, options=self.options.model_copy(update={"arq": arq}))

    def refused(self, reason: str, shown: Any) -> "TakenCall":
        """The same call as a job that fails with `reason` at its first claim."""
        arq = self.arq.model_copy(update={"defect": reason})
        options = JobOptions(job_id=self.options.job_id, arq=arq)
        return replace(self, data=_shown(shown), options=options, arq=arq)


def job_id_for(arq_id: str) -> str:
    """arq's id where our job ids accept it, else one derived from it (arq takes any string;
    ours refuse spaces and all-digit ids)."""
    try:
        JobOptions(job_id=arq_id)
    except ValidationError:
        slug = _BAD_ID.sub("-", arq_id)[:100]
        return f"arq-{slug}-{sha256(arq_id.encode()).hexdigest()[:12]}"
    return arq_id


def plan_call(
    s: IntakeSettings, arq_id: str, score: float, body: bytes | None, pttl: int, now: int
) -> TakenCall:
    """`body` is arq's job key (None once it expired), `pttl` its time to live, `score` its run
    time; `now` the take's server time, which marks the call while it is being added."""
    arq = ArqCallOptions(queue_name=s.arq_queue, arq_id=arq_id, enqueued_at=now)
    unread = TakenCall(
        arq_id=arq_id,
        queue=INTAKE_QUEUE,
        name="arq",
        data=None,
        options=JobOptions(job_id=job_id_for(arq_id), arq=arq),
        arq=arq,
        pending=-now,
    )
    if body is None:
        return unread.refused(f"the arq job {arq_id!r} expired before a worker took it", None)
    try:
        call = decode_call(body, deserializer=s.deserializer, allow_pickle=s.allow_pickle)
    except RefusedCallError as exc:
        return unread.with_arq(pickle=is_pickle(body)).refused(str(exc), {"bytes": len(body)})
    return _planned(s, unread, call, score, pttl, pickled=is_pickle(body))


def _planned(
    s: IntakeSettings,
    unread: TakenCall,
    call: ArqCallRecord,
    score: float,
    pttl: int,
    *,
    pickled: bool,
) -> TakenCall:
    now = int(time.time() * 1000)
    plan = replace(
        unread, name=call.function, data={"args": list(call.args), "kwargs": call.kwargs}
    ).with_arq(
        enqueued_at=call.enqueued_at,
        job_try=max(call.job_try or 1, 1),
        pickle=pickled,
        # arq's `_expires` is its job key's time to live (a day past the run time when the call
        # gave none): no attempt starts after it.
        expires_at=now + pttl if pttl > 0 else None,
    )
    handler = s.handlers.get(call.function)
    contract = s.contracts.get(call.function)
    if handler is None and contract is None:
        return plan.refused(f"function {call.function!r} not found", plan.data)  # arq's words
    plan = replace(plan, queue=call.function)
    if not math.isfinite(score):  # only a hand-made ZADD gives this; refused, not a failed pass
        return plan.refused(f"arq's run time {score} is not a time", plan.data)
    delay = max(int(score) - now, 0)
    if delay > MAX_DELAY_MS:
        return plan.refused("arq's run time is more than 365 days ahead", plan.data)
    model: type[BaseModel] | None = None
    if contract is not None:
        model = contract.data_model
    elif handler is not None and handler.data_model is not ArqCall:
        model = handler.data_model  # a typed handler outside the catalog
    try:
        data = payload_for(call.function, model, call.args, call.kwargs)
    except (TypeError, ValidationError) as exc:
        return plan.refused(str(exc), plan.data)
    base = contract.defaults if contract is not None else JobOptions()
    options = base.model_copy(
        update={"job_id": unread.options.job_id, "arq": plan.arq, "delay": delay}
    )
    return replace(plan, data=data, options=options)


def _shown(data: Any) -> Any:
    """A refused call's arguments as they can be stored: JSON where possible (cut to SHOWN_MAX),
    else their repr."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    try:
        text = dumps(data)
    except (PydanticSerializationError, ValueError, TypeError):
        return {"repr": repr(data)[:SHOWN_MAX]}
    if len(text) > SHOWN_MAX:
        return {"cut": text[:SHOWN_MAX].decode("utf-8", "replace")}
    return data
