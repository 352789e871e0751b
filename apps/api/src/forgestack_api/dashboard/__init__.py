"""The operator's dashboard at /dashboard: server-rendered pages over the same `QueueService` and
roles as the API, logged in with an API key kept in an HttpOnly cookie. See README "Dashboard"."""

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ..deferred_routes import DeferredRouter, DeferredRoutes
from . import operate, pages, stream
from .rendering import HERE

PREFIX = "/dashboard"

WEBHOOK_PAGES = DeferredRouter("forgestack_api.dashboard.webhooks", PREFIX, (f"{PREFIX}/webhooks",))
"""The webhook pages read the database: included on first use (see `deferred_routes`)."""


def install_dashboard(app: FastAPI, deferred: DeferredRoutes) -> None:
    for module in (pages, operate, stream):
        app.include_router(module.router, prefix=PREFIX)
    deferred.defer(WEBHOOK_PAGES)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")
