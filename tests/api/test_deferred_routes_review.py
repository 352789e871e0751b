"""Outside review of the deferred routers: one that fails to import must not have the others'
routes added again on every request that retries the load."""

import sys
import types
from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from forgestack_api.deferred_routes import DeferredRouter, DeferredRoutes

BROKEN = "tests_deferred_review_broken"
FINE = "tests_deferred_review_fine"


class _BrokenFinder:
    """Makes `import BROKEN` fail as a module with a missing dependency would."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == BROKEN:
            raise ImportError(f"No module named {BROKEN!r} (a dependency missing from the install)")


@pytest.fixture
def modules() -> Iterator[None]:
    fine = APIRouter()

    @fine.get("/fine")
    async def fine_route() -> str:
        return "fine"

    module = types.ModuleType(FINE)
    module.router = fine  # type: ignore[attr-defined]
    sys.modules[FINE] = module
    finder = _BrokenFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        sys.modules.pop(FINE, None)


@pytest.mark.usefixtures("modules")
async def test_a_router_that_fails_to_import_does_not_add_the_others_again_per_request() -> None:
    """`load` includes the routers last first; one failing after another was included leaves it
    pending too, so each later request includes it once more: the route list grows by a copy of
    every other deferred router per request, for the life of the process."""
    app = FastAPI()
    deferred = DeferredRoutes(app)
    deferred.defer(DeferredRouter(BROKEN, "/v1", ("/v1/broken",)))
    deferred.defer(DeferredRouter(FINE, "/v1", ("/v1/fine",)))
    deferred.install()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    sizes = []
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(5):
            assert (await client.get("/v1/fine")).status_code == 500
            sizes.append(len(app.router.routes))
    assert len(set(sizes)) == 1, f"routes after each request: {sizes}"
