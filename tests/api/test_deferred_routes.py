"""Routers that load the database layer are included on first use, at their declared place in the
route order, and a request to any of their routes (or the OpenAPI document) includes them first."""

import importlib
import sys
import types

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from forgestack_api.dashboard import WEBHOOK_PAGES
from forgestack_api.deferred_routes import DeferredRouter, DeferredRoutes
from forgestack_api.main import DATABASE_ROUTERS

from tests.api.conftest import ADMIN_KEY

DEFERRED = (*DATABASE_ROUTERS, WEBHOOK_PAGES)


def test_every_route_of_a_deferred_router_is_covered_by_its_declared_paths() -> None:
    for deferred in DEFERRED:
        router = importlib.import_module(deferred.module).router
        paths = [deferred.prefix + r.path for r in router.routes if isinstance(r, APIRoute)]
        assert paths, deferred.module
        for path in paths:
            assert path.startswith(deferred.paths), (deferred.module, path)


def _module(name: str, router: APIRouter) -> None:
    module = types.ModuleType(name)
    module.router = router  # type: ignore[attr-defined]
    sys.modules[name] = module


async def test_a_deferred_router_keeps_its_place_before_later_routes() -> None:
    special = APIRouter()

    @special.get("/things/special")
    async def special_thing() -> str:
        return "special"

    _module("tests_deferred_special", special)
    app = FastAPI()
    deferred = DeferredRoutes(app)
    deferred.defer(DeferredRouter("tests_deferred_special", "/v1", ("/v1/things/special",)))

    @app.get("/v1/things/{name}")
    async def any_thing(name: str) -> str:
        return f"any {name}"

    deferred.install()
    assert deferred.pending
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/v1/things/plain")).json() == "any plain"
        assert deferred.pending  # a path no deferred router declares loads nothing
        assert (await c.get("/v1/things/special")).json() == "special"
        assert not deferred.pending
        assert (await c.get("/v1/things/special")).json() == "special"
    del sys.modules["tests_deferred_special"]


@pytest.mark.usefixtures("settings")
async def test_behind_a_path_prefix_the_deferred_routes_load_too() -> None:
    from forgestack_api.main import create_app

    app = create_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, root_path="/gateway")
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get(
                "/gateway/api/v1/api-keys", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
            )
    assert response.status_code == 403, response.text  # the route's answer to the operator
    assert not app.state.deferred_routes.pending


def test_the_openapi_document_describes_the_deferred_routes() -> None:
    from forgestack_api.main import create_app

    paths = create_app().openapi()["paths"]
    assert "/api/v1/api-keys" in paths
    assert "/api/v1/audit-logs" in paths
    assert "/api/v1/webhooks/endpoints" in paths
    assert "/api/v1/webhooks/deliveries" in paths


def test_listing_an_apps_routes_can_include_the_deferred_ones_first() -> None:
    from forgestack_api.deferred_routes import include_deferred_routes
    from forgestack_api.main import create_app

    app = create_app()
    deferred = app.state.deferred_routes
    assert len(deferred.pending) == len(DEFERRED)
    include_deferred_routes(app)
    assert not deferred.pending
