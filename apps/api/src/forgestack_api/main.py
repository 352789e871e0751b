"""The FastAPI application factory and the `api` console script."""

import uvicorn
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from forgestack_db.role_report import UnsafeDatabaseRoleError
from forgestack_shared.logging import configure_logging
from forgestack_shared.settings import get_settings
from forgestack_shared.startup import (
    check_production,
    exit_on_startup_error,
    load_settings,
    unsafe_database_login,
)
from forgestack_shared.tracing import configure_tracing

from .body_limit import BodyLimitMiddleware
from .dashboard import install_dashboard
from .deferred_routes import DeferredRouter, DeferredRoutes
from .docs_policy import DocsPolicyMiddleware
from .errors import install_error_handlers
from .key_lookup import check_login
from .large_bodies import LargeBodySlotsMiddleware
from .lifespan import lifespan
from .memory import TrimWhenIdleMiddleware
from .metrics import HttpMetricsMiddleware
from .metrics import router as metrics_router
from .openapi_doc import install_openapi
from .request_context import RequestContextMiddleware
from .routes import (
    cron,
    events,
    health,
    jobs,
    notifications,
    queue_controls,
    queues,
    workers,
)
from .routes.enqueue import install_enqueue
from .webhook_errors import install_webhook_errors

API_PREFIX = "/api/v1"

DATABASE_ROUTERS = (
    DeferredRouter("forgestack_api.routes.audit_logs", API_PREFIX, (f"{API_PREFIX}/audit-logs",)),
    DeferredRouter("forgestack_api.routes.api_keys", API_PREFIX, (f"{API_PREFIX}/api-keys",)),
    DeferredRouter(
        "forgestack_api.routes.webhook_endpoints", API_PREFIX, (f"{API_PREFIX}/webhooks/",)
    ),
    DeferredRouter(
        "forgestack_api.routes.webhook_deliveries", API_PREFIX, (f"{API_PREFIX}/webhooks/",)
    ),
)
"""The API's routers that use the database layer, in their place in the route order."""


def create_app() -> FastAPI:
    """Builds the app; each uvicorn worker process calls it, so logging is configured here."""
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json, component="api")
    tracing = configure_tracing(settings.tracing_enabled, "forgestack-api")
    # Swagger UI and ReDoc from the assets fastapi-offline ships: the pages load with no network.
    app = FastAPIOffline(
        title="ForgeStack API",
        summary="Validates and enqueues typed background jobs, and shows their state.",
        version="0.1.0",
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry spans, metrics and logs follow TRACING_ENABLED; left on, it
        # asks OpenTelemetry for its providers on every request even when none is installed.
        telemetry={"tracing": tracing, "metrics": tracing, "logs": tracing},
    )
    install_error_handlers(app)
    # Inside the body cap: a body is read ahead for a slot only once the cap has let it through.
    app.add_middleware(LargeBodySlotsMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_body_bytes)
    install_webhook_errors(app)
    app.add_middleware(RequestContextMiddleware, tracing=tracing)
    app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(DocsPolicyMiddleware)
    # Outermost, so it sees every request in flight and trims only once they are all done.
    app.add_middleware(TrimWhenIdleMiddleware)
    # Routes are tried in order: the enqueue routes first, as plain routes of the app (an included
    # router's routes are matched twice per request); then each router straight on the app (a
    # router nested in another costs a matching level per request), the API's first.
    # The routers that use the database layer are included where they stand here, on first use.
    install_enqueue(app, API_PREFIX)
    deferred = DeferredRoutes(app)
    for router in (
        queues.router,
        queue_controls.router,
        jobs.router,
        events.router,
        workers.router,
        notifications.router,
        *DATABASE_ROUTERS,
        cron.router,
    ):
        if isinstance(router, DeferredRouter):
            deferred.defer(router)
        else:
            app.include_router(router, prefix=API_PREFIX)
    app.include_router(health.router)
    app.include_router(metrics_router)
    install_dashboard(app, deferred)
    install_openapi(app)
    deferred.install()
    return app


def run() -> None:
    """`uv run api`: host, port and worker count come from settings (API_HOST, API_PORT, ...).

    Settings are checked here, before uvicorn, whose start-up failure is a traceback. Redis need
    not be up: the app starts, `/readyz` answers 503 until Redis does (see the lifespan)."""
    with exit_on_startup_error("api"):
        settings = load_settings()
        check_production(settings, needs_admin_key=True)
        try:
            check_login(settings.effective_database_url, settings)
        except UnsafeDatabaseRoleError as exc:
            raise unsafe_database_login(exc) from exc
    configure_logging(settings.log_level, json=settings.log_json, component="api")
    # The import string plus factory works for one worker and for several (each builds its app).
    uvicorn.run(
        "forgestack_api.main:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        log_config=None,
    )
