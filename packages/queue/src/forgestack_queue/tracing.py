"""A span per job attempt, the child of the span that added the job (its W3C `traceparent` is
carried in the job's meta). Without a configured tracer provider the span is a no-op."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from loguru import logger
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .meta import LOGGED_FIELDS, job_meta

if TYPE_CHECKING:
    from .runner import ClaimedJob

_tracer = trace.get_tracer("forgestack.worker")
_propagator = TraceContextTextMapPropagator()


def spans_recorded() -> bool:
    """Whether a tracer provider is installed: without one every span is a no-op, and an attempt
    without a trace parent has nothing to open or carry."""
    return not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )


def trace_fields() -> dict[str, str]:
    """The current span as meta fields (`traceparent`) and a log field (`trace_id`); empty when
    no span records, so untraced processes add nothing to jobs or lines."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return {**carrier, "trace_id": format(context.trace_id, "032x")}


@contextmanager
def attempt_span(job: "ClaimedJob") -> Iterator[None]:
    parent = _propagator.extract(job.meta) if "traceparent" in job.meta else None
    with _tracer.start_as_current_span(
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
