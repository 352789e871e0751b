"""The FastAPI application factory and the `api` console script."""

import uvicorn
from fastapi import APIRouter, FastAPI
from forgestack_db.guard import UnsafeDatabaseRoleError
from forgestack_db.startup import check_database_login
from forgestack_shared.logging import configure_logging
from forgestack_shared.settings import get_settings
from forgestack_shared.startup import (
    check_production,
    check_redis,
    exit_on_startup_error,
    load_settings,
    unsafe_database_login,
)

from .body_limit import BodyLimitMiddleware
from .errors import install_error_handlers
from .lifespan import lifespan
from .routes import api_keys, audit_logs, events, health, jobs, notifications, queues, workers

API_PREFIX = "/api/v1"


def create_app() -> FastAPI:
    """Builds the app; each uvicorn worker process calls it, so logging is configured here."""
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json, component="api")
    app = FastAPI(
        title="ForgeStack API",
        summary="Validates and enqueues typed background jobs, and shows their state.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_body_bytes)
    app.include_router(health.router)
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(queues.router)
    api.include_router(jobs.router)
    api.include_router(events.router)
    api.include_router(workers.router)
    api.include_router(notifications.router)
    api.include_router(audit_logs.router)
    api.include_router(api_keys.router)
    app.include_router(api)
    return app


def run() -> None:
    """`uv run api`: host, port and worker count come from settings (API_HOST, API_PORT, ...).

    Settings and Redis are checked here, before uvicorn, whose start-up failure is a traceback."""
    with exit_on_startup_error("api"):
        settings = load_settings()
        check_production(settings, needs_admin_key=True)
        check_redis(settings)
        try:
            check_database_login(settings.effective_database_url, settings)
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
