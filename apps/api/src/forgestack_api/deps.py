"""Annotated dependencies: what a route declares in its signature to get settings, the caller's
queue service or the authenticated caller."""

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from forgestack_shared.settings import Settings

from .auth import Principal, authenticate
from .lifespan import AppResources, resources_of
from .queue_service import QueueService

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")

_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


# Dependencies are coroutines: FastAPI runs a plain `def` one in its thread pool, a hop per request.
async def _resources(request: Request) -> AppResources:
    return resources_of(request)


async def _settings(request: Request) -> Settings:
    return resources_of(request).settings


ResourcesDep = Annotated[AppResources, Depends(_resources)]
SettingsDep = Annotated[Settings, Depends(_settings)]


async def require_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Any valid key; 401 (with the Bearer challenge) for a missing, malformed or unknown one."""
    if credentials is None or not credentials.credentials:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token", _UNAUTHORIZED)
    principal = await authenticate(credentials.credentials, resources_of(request).authenticators)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API key", _UNAUTHORIZED)
    return principal


PrincipalDep = Annotated[Principal, Depends(require_principal)]


async def _jobs(request: Request, principal: PrincipalDep) -> QueueService:
    """The caller's jobs only: bound to the key's organisation (never to anything in the body)."""
    return resources_of(request).queues.for_owner(principal.owner)


JobsDep = Annotated[QueueService, Depends(_jobs)]
"""The queues as the caller may see them: its organisation's jobs, or all for the operator."""
