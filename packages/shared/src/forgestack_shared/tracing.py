"""OpenTelemetry set-up, off by default: with TRACING_ENABLED=false nothing is installed and
every span the code starts is OpenTelemetry's no-op one."""

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def configure_tracing(enabled: bool, service_name: str) -> bool:
    """Installs an OTLP/HTTP exporting provider once per process; a provider already installed
    (a test's in-memory one, or the opentelemetry-instrument launcher's) is kept. Returns whether
    spans are recorded."""
    if not enabled:
        return False
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return True
    # Imported here: the exporter pulls in an HTTP stack that a process without tracing never needs.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True
