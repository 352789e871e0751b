"""Memory freed by a burst of requests goes back to the system once the burst is over, and the
trim that returns it is not paid per request."""

import asyncio

import httpx
import pytest
from forgestack_api import memory
from forgestack_api.memory import TrimWhenIdleMiddleware, resident_bytes
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

MIB = 1_048_576

pytestmark = pytest.mark.skipif(memory._TRIM is None, reason="malloc_trim is glibc's")


_PINS: list[bytearray] = []


async def allocate_and_free(request: Request) -> PlainTextResponse:
    """Blocks above pymalloc's 512-byte limit come from malloc, as large request data does; one
    block kept past the request sits above them, as live objects do, so glibc's own trim of the
    heap's top on `free` cannot return them: only `malloc_trim` can."""
    held = [bytearray(4096) for _ in range(int(request.query_params["mib"]) * 256)]
    _PINS.append(bytearray(4096))
    del held[:]
    await asyncio.sleep(0)
    return PlainTextResponse("ok")


def _app() -> tuple[TrimWhenIdleMiddleware, httpx.AsyncClient]:
    inner = Starlette(routes=[Route("/", allocate_and_free)])
    trimming = TrimWhenIdleMiddleware(inner)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=trimming), base_url="http://t")
    return trimming, client


async def test_a_burst_gives_its_memory_back_once_the_last_request_finishes() -> None:
    trimming, client = _app()
    memory.return_freed_memory()
    before = resident_bytes()
    async with client:
        burst = [client.get("/", params={"mib": 8}) for _ in range(4)]
        assert all(r.status_code == 200 for r in await asyncio.gather(*burst))
    assert trimming.trims == 1
    assert resident_bytes() - before < 8 * MIB


async def test_requests_that_leave_nothing_behind_pay_no_trim() -> None:
    trimming, client = _app()
    async with client:
        for _ in range(50):
            assert (await client.get("/", params={"mib": 0})).status_code == 200
    assert trimming.trims == 0
