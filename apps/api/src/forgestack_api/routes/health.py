"""Liveness and readiness probes: no authentication, nothing secret in the answers."""

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from loguru import logger

from ..deps import ResourcesDep
from ..lifespan import AppResources

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_S = 2.0


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _ping_redis(resources: AppResources) -> None:
    await resources.redis.ping()


async def _select_one(resources: AppResources) -> None:
    await resources.keys.ping()


_CHECKS: dict[str, Callable[[AppResources], Awaitable[None]]] = {
    "redis": _ping_redis,
    "database": _select_one,
}


async def _check(name: str, resources: AppResources) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await _CHECKS[name](resources)
    except Exception as exc:
        # Only the exception type goes out: driver messages may name users or hosts.
        logger.warning("readiness check {} failed: {!r}", name, exc)
        return f"failed: {type(exc).__name__}"
    return "ok"


@router.get(
    "/readyz",
    summary="Redis and the database answer",
    responses={503: {"description": "A dependency is down; `checks` names it."}},
)
async def readyz(resources: ResourcesDep) -> JSONResponse:
    names = list(_CHECKS)
    results = await asyncio.gather(*(_check(name, resources) for name in names))
    checks = dict(zip(names, results, strict=True))
    failing = [name for name, result in checks.items() if result != "ok"]
    if failing:
        body = {"status": "unavailable", "failing": failing, "checks": checks}
        return JSONResponse(status_code=503, content=body)
    return JSONResponse(content={"status": "ready", "checks": checks})
