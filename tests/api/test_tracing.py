"""TRACING_ENABLED: a server span per request, a span per job attempt as its child (the trace
parent travels in the job's meta), with job.id, job.queue and job.attempt; SDK in-memory export."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from forgestack_api.main import create_app
from forgestack_queue.testing import run_burst_worker
from forgestack_shared.settings import Settings, get_settings
from forgestack_worker.registry import HANDLERS
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.api.conftest import ADMIN_KEY

JOBS = "/api/v1/queues/my-new-job/jobs"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider can be set once: an SDK one exporting to memory, stopped
    after the test so later tests' spans are not kept."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    try:
        yield exporter
    finally:
        exporter.shutdown()


@pytest.fixture
async def traced_app(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FastAPI]:
    monkeypatch.setenv("TRACING_ENABLED", "true")
    get_settings.cache_clear()
    app = create_app()
    async with app.router.lifespan_context(app):
        yield app


async def test_a_job_span_is_the_child_of_the_request_that_added_it(
    spans: InMemorySpanExporter, traced_app: FastAPI, redis_url: str, queue_prefix: str
) -> None:
    transport = httpx.ASGITransport(app=traced_app)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api.test", headers=headers
    ) as client:
        body = {"data": {"user_id": "u1", "action": "fail"}, "options": {"attempts": 2}}
        added = await client.post(JOBS, json=body)
    assert added.status_code == 202
    handlers = [h for h in HANDLERS if h.queue == "my-new-job"]
    await run_burst_worker(redis_url, handlers, prefix=queue_prefix)

    (request,) = [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    attempts = sorted(
        (s for s in spans.get_finished_spans() if s.name == "job my-new-job"),
        key=lambda s: s.attributes["job.attempt"],  # type: ignore[index]
    )
    assert [s.attributes["job.attempt"] for s in attempts] == [1, 2]  # type: ignore[index]
    assert request.name == "POST /api/v1/queues/{queue}/jobs"
    assert request.context is not None
    for attempt in attempts:
        assert attempt.parent is not None
        assert attempt.parent.span_id == request.context.span_id
        assert attempt.context is not None
        assert attempt.context.trace_id == request.context.trace_id
        assert attempt.attributes == {
            "job.id": added.json()["id"],
            "job.queue": "my-new-job",
            "job.attempt": attempt.attributes["job.attempt"],  # type: ignore[index]
        }
