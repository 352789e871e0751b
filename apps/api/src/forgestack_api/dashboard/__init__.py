"""The operator's dashboard at /dashboard: server-rendered pages over the same `QueueService` and
roles as the API, logged in with an API key kept in an HttpOnly cookie. See README "Dashboard"."""

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from . import operate, pages, stream, webhooks
from .rendering import HERE

PREFIX = "/dashboard"


def install_dashboard(app: FastAPI) -> None:
    for module in (pages, operate, stream, webhooks):
        app.include_router(module.router, prefix=PREFIX)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")
