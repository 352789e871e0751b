"""Routers included the first time a request needs one of them, at the place in the route order
they were declared, so matching is exactly as if they had been included at start.

Their modules are the ones that load the database layer (SQLModel tables as response models,
SQLAlchemy sessions): API keys, audit logs, webhooks and their dashboard pages. An API process that
only enqueues never imports them and so never loads SQLAlchemy, SQLModel and greenlet (about
22 MiB). A request whose path starts with one of a router's declared prefixes, or the OpenAPI
document, includes them all (once, on the event loop: about 0.2 s)."""

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass(frozen=True, slots=True)
class DeferredRouter:
    module: str
    """Its module's import path; the module has a `router`."""
    prefix: str
    """What it is included under, as `include_router(prefix=...)`."""
    paths: tuple[str, ...]
    """Full path prefixes that cover every route of the router (a test checks they do)."""


class DeferredRoutes:
    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._pending: list[tuple[int, DeferredRouter]] = []

    @property
    def pending(self) -> tuple[DeferredRouter, ...]:
        return tuple(router for _, router in self._pending)

    def defer(self, router: DeferredRouter) -> None:
        """Where `app.include_router` would be called now."""
        self._pending.append((len(self._app.router.routes), router))

    def needed_by(self, path: str) -> bool:
        return any(path.startswith(p) for _, router in self._pending for p in router.paths)

    def load(self) -> None:
        """Includes every deferred router at its declared place; later calls do nothing."""
        routes = self._app.router.routes
        # Every module first: one that fails to import then changes nothing, so the next request's
        # retry does not include the others a second time.
        modules = [importlib.import_module(deferred.module) for _, deferred in self._pending]
        # Last first: inserting at a later position leaves the earlier positions where they were.
        for (position, deferred), module in reversed(
            list(zip(self._pending, modules, strict=True))
        ):
            end = len(routes)
            self._app.include_router(module.router, prefix=deferred.prefix)
            added = routes[end:]
            del routes[end:]
            routes[position:position] = added
        self._pending.clear()

    def install(self) -> None:
        """The middleware that loads them, and an OpenAPI document that describes them too."""
        self._app.state.deferred_routes = self
        self._app.add_middleware(DeferredRoutesMiddleware, deferred=self)
        generate: Callable[[], dict[str, Any]] = self._app.openapi

        def openapi() -> dict[str, Any]:
            self.load()
            return generate()

        self._app.openapi = openapi  # type: ignore[method-assign]


def include_deferred_routes(app: FastAPI) -> None:
    """Every route now, for code that lists an app's routes rather than serving requests."""
    deferred = getattr(app.state, "deferred_routes", None)
    if isinstance(deferred, DeferredRoutes):
        deferred.load()


class DeferredRoutesMiddleware:
    def __init__(self, app: ASGIApp, *, deferred: DeferredRoutes) -> None:
        self.app = app
        self.deferred = deferred

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.deferred.needed_by(_route_path(scope)):
            self.deferred.load()
        await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path routes match: behind a proxy's prefix (`root_path`), without it, as Starlette's."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
