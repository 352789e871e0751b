"""`GET /metrics` in Prometheus' text format: job counts and histograms every worker flushed into
Redis (`forgestack_queue.metrics`), queue depth per state and live workers read at scrape time,
and this API process's HTTP request metrics.

HTTP metrics are per API process (prometheus-client's own registry); with API_WORKERS > 1 each
scrape reaches one process. Job metrics do not have that limit: they live in Redis."""

from collections.abc import Iterable
from time import perf_counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials
from forgestack_queue.metrics import BUCKETS, COUNTERS, read_queue_metrics
from forgestack_queue.producer import Queue, known_queues
from forgestack_queue.workers import WorkerInfo, live_workers
from forgestack_shared.catalog import CATALOG
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import Role
from .deps import _bearer, require_principal
from .lifespan import resources_of
from .request_context import route_template

HTTP_REGISTRY = CollectorRegistry()
_REQUESTS = Counter(
    "forgestack_http_requests",
    "HTTP requests answered, by route template (never the raw path: ids stay out of labels).",
    ["method", "route", "status"],
    registry=HTTP_REGISTRY,
)
_LATENCY = Histogram(
    "forgestack_http_request_duration_seconds",
    "Time to the end of the response body.",
    ["method", "route"],
    registry=HTTP_REGISTRY,
)

router = APIRouter()


class HttpMetricsMiddleware:
    """Pure ASGI and one dictionary look-up per request: the bench measures this path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        code = 500

        async def send_status(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            requests, latency = _series(scope["method"], route_template(scope), code)
            requests.inc()
            latency.observe(perf_counter() - started)


_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}
MAX_SERIES = 10_000
"""Label children kept per process: `labels()` takes a lock and builds its key on every call."""


def _series(method: str, route: str, code: int) -> tuple[Any, Any]:
    key = (method, route, code)
    found = _SERIES.get(key)
    if found is None:
        if len(_SERIES) >= MAX_SERIES:
            _SERIES.clear()
        found = (_REQUESTS.labels(method, route, str(code)), _LATENCY.labels(method, route))
        _SERIES[key] = found
    return found


async def _may_scrape(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """The operator key unless METRICS_AUTH=open: metrics span every organisation."""
    if resources_of(request).settings.metrics_auth == "open":
        return
    principal = await require_principal(request, credentials)
    if not principal.at_least(Role.OPERATOR):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "metrics need the operator key")


class _Snapshot(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(_may_scrape)])
async def metrics(request: Request) -> Response:
    resources = resources_of(request)
    redis, prefix = resources.redis, resources.settings.queue_prefix
    queues = sorted(set(await known_queues(redis, prefix=prefix)) | {q.value for q in CATALOG})
    stored = await read_queue_metrics(redis, prefix, queues)
    depth = GaugeMetricFamily(
        "forgestack_queue_jobs", "Jobs per queue and state.", labels=["queue", "state"]
    )
    for queue in queues:
        for state, count in (await Queue(redis, queue, prefix=prefix).counts()).items():
            depth.add_metric([queue, state.value], count)
    registry = CollectorRegistry()
    fleet = await live_workers(redis, prefix)
    registry.register(_Snapshot([*_job_families(stored), depth, *_worker_families(fleet, queues)]))
    body = generate_latest(registry) + generate_latest(HTTP_REGISTRY)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


def _worker_families(fleet: list[WorkerInfo], queues: list[str]) -> list[Metric]:
    """From the worker registry, as GET /api/v1/workers lists it: the two always agree. Per
    queue: every known queue, and any other a live worker serves (one with no job yet)."""
    live = GaugeMetricFamily(
        "forgestack_workers_live", "Worker processes whose heartbeat has not lapsed."
    )
    live.add_metric([], len(fleet))
    serving = GaugeMetricFamily(
        "forgestack_queue_workers", "Live worker processes serving the queue.", labels=["queue"]
    )
    for queue in sorted(set(queues).union(*(w.queues for w in fleet))):
        serving.add_metric([queue], sum(1 for w in fleet if queue in w.queues))
    return [live, serving]


def _job_families(stored: dict[str, dict[str, float]]) -> list[Metric]:
    help_of = {
        "added": "Jobs added (new ids only; an idempotent re-add is not counted).",
        "completed": "Attempts that completed their job.",
        "failed": "Jobs that failed for good (attempts spent or unrecoverable).",
        "retried": "Failed attempts that will run again.",
        "rate_limited": "Attempts a handler ended with RateLimited: back to waiting, no attempt spent.",
    }
    counters = {
        name: CounterMetricFamily(f"forgestack_jobs_{name}", help_of[name], labels=["queue"])
        for name in COUNTERS
    }
    histograms = {
        "duration": HistogramMetricFamily(
            "forgestack_job_duration_seconds", "Run time of each attempt.", labels=["queue"]
        ),
        "wait": HistogramMetricFamily(
            "forgestack_job_wait_seconds",
            "From added (or due, when delayed) to the first attempt's start.",
            labels=["queue"],
        ),
    }
    for queue, fields in stored.items():
        for name, family in counters.items():
            family.add_metric([queue], fields.get(name, 0.0))
        for name, histogram in histograms.items():
            cumulative, buckets = 0.0, []
            for bound in BUCKETS:
                cumulative += fields.get(f"{name}_le_{bound}", 0.0)
                buckets.append((str(bound), cumulative))
            buckets.append(("+Inf", fields.get(f"{name}_count", 0.0)))
            histogram.add_metric([queue], buckets, fields.get(f"{name}_sum", 0.0))
    return [*counters.values(), *histograms.values()]
