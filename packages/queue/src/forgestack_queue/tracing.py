"""A span per job attempt, the child of the span that added the job (its W3C `traceparent` is
carried in the job's meta). Without a configured tracer provider the span is a no-op.

OpenTelemetry is imported only when it can matter: once something in the process has imported it
(a provider installed by the app or the `opentelemetry-instrument` launcher), when
OTEL_PYTHON_TRACER_PROVIDER names one, or when a job carries a trace parent. A worker without
tracing never loads it (milliseconds of its start-up to first claim)."""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING

from loguru import logger

from .meta import LOGGED_FIELDS, job_meta

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from .runner import ClaimedJob

PROVIDER_VARIABLE = "OTEL_PYTHON_TRACER_PROVIDER"
"""OpenTelemetry's own way to name a provider by entry point (read by get_tracer_provider)."""


def tracing_possible() -> bool:
    """False only when no tracer provider can exist: OpenTelemetry's API was never imported (so
    nothing installed one) and the environment names none."""
    return "opentelemetry.trace" in sys.modules or bool(os.environ.get(PROVIDER_VARIABLE))


@cache
def _tracer() -> "Tracer":
    from opentelemetry import trace

    # A proxy until a provider is installed, then that provider's tracer: safe to keep.
    return trace.get_tracer("forgestack.worker")


@cache
def _propagator() -> "TraceContextTextMapPropagator":
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()


def spans_recorded() -> bool:
    """Whether a tracer provider is installed: without one every span is a no-op, and an attempt
    without a trace parent has nothing to open or carry."""
    if not tracing_possible():
        return False
    from opentelemetry import trace

    return not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )


def trace_fields() -> dict[str, str]:
    """The current span as meta fields (`traceparent`) and a log field (`trace_id`); empty when
    no span records, so untraced processes add nothing to jobs or lines."""
    if "opentelemetry.trace" not in sys.modules:
        return {}  # no span was ever started in this process
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    carrier: dict[str, str] = {}
    _propagator().inject(carrier)
    return {**carrier, "trace_id": format(context.trace_id, "032x")}


@contextmanager
def attempt_span(job: "ClaimedJob") -> Iterator[None]:
    traced = "traceparent" in job.meta
    if not traced and not tracing_possible():
        # OpenTelemetry's no-op span without a parent carries nothing: no fields, no log ids.
        yield
        return
    from opentelemetry import trace

    parent = _propagator().extract(job.meta) if traced else None
    with _tracer().start_as_current_span(
        f"job {job.queue}",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes={"job.id": job.id, "job.queue": job.queue, "job.attempt": job.attempt},
    ):
        fields = trace_fields()
        # Jobs this attempt adds become children of its span; its log lines name the trace.
        with job_meta(**fields), logger.contextualize(**_logged(fields)):
            yield


def _logged(fields: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in fields.items() if k in LOGGED_FIELDS}
