"""OpenTelemetry set-up, off by default: with TRACING_ENABLED=false nothing is installed and
every span the code starts is OpenTelemetry's no-op one. The SDK is imported only when tracing is
on: it pulls in psutil and its resource detectors, megabytes a process without tracing never uses.
The API itself is imported only then too: the worker without tracing never loads OpenTelemetry
(forgestack_queue.tracing), which shortens its start-up to first claim."""


def configure_tracing(enabled: bool, service_name: str) -> bool:
    """Installs an OTLP/HTTP exporting provider once per process; a provider already installed
    (a test's in-memory one, or the opentelemetry-instrument launcher's) is kept. Returns whether
    spans are recorded."""
    if not enabled:
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return True
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True
