"""Propagation context carried from the code that adds a job to every attempt that runs it.

The API sets it per request (request id, W3C trace parent); `Queue.add` stores it in the job's
`meta` field, and the worker restores it around each attempt, so one id finds the request's log
lines and the job's, and a job added by a job inherits its context. A context variable, not a
parameter: every producer (routes, the queue service, handlers) gets it without being changed.
"""

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

from loguru import logger

MAX_META_BYTES = 512
"""Propagation fields only (ids, a traceparent): a cap so meta can never grow a job's record."""

_meta: ContextVar[Mapping[str, str]] = ContextVar(
    "forgestack_job_meta", default=MappingProxyType({})
)


def current_meta() -> Mapping[str, str]:
    return _meta.get()


@contextmanager
def job_meta(**fields: str | None) -> Iterator[None]:
    """Adds fields (None ones are dropped) to what jobs added inside this block carry."""
    merged = {**_meta.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _meta.set(merged)
    try:
        yield
    finally:
        _meta.reset(token)


def meta_to_json(meta: Mapping[str, str]) -> str:
    """'' for no meta (no field written); an oversized meta is dropped rather than failing adds."""
    if not meta:
        return ""
    text = json.dumps(dict(meta), separators=(",", ":"))
    return text if len(text) <= MAX_META_BYTES else ""


def meta_from_json(raw: bytes | None) -> dict[str, str]:
    """Never raises: a corrupt meta field loses its context, never the job."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str)}


LOGGED_FIELDS = ("request_id", "trace_id")
"""Meta fields bound on every log line of an attempt, so one id finds both sides."""


@contextmanager
def restored(meta: Mapping[str, str]) -> Iterator[None]:
    """Around one attempt: jobs it adds carry the same context, and its log lines name it."""
    token = _meta.set(dict(meta))
    try:
        with logger.contextualize(**{k: meta[k] for k in LOGGED_FIELDS if k in meta}):
            yield
    finally:
        _meta.reset(token)
