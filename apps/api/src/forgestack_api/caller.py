"""`CallerDep`: the caller, its organisation's queues and its audit recorder as one dependency.

FastAPI walks every declared dependency's whole tree on each request, even one already solved for
that request: `JobsDep` + `PrincipalDep` + `AuditDep` cost about a dozen walks where this costs
one. The enqueue routes, the ones the HTTP bench drives, take this one."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from .audit import AuditRecorder
from .auth import Principal
from .deps import _bearer, require_principal
from .lifespan import resources_of
from .queue_service import QueueService


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    jobs: QueueService
    """Bound to the key's organisation (never to anything in the body), as `JobsDep`."""
    audit: AuditRecorder


async def resolve_caller(request: Request) -> Caller:
    # The bearer scheme and `require_principal` called, not declared: the same checks with no
    # dependency tree under this one (the routes declare the scheme in OpenAPI: BEARER_SECURITY).
    principal = await require_principal(request, await _bearer(request))
    jobs = resources_of(request).queues.for_owner(principal.owner)
    return Caller(principal=principal, jobs=jobs, audit=AuditRecorder(jobs, principal, request))


CallerDep = Annotated[Caller, Depends(resolve_caller)]
BEARER_SECURITY: dict[str, Any] = {"security": [{"HTTPBearer": []}]}
"""`openapi_extra` of a route taking CallerDep: what FastAPI writes for the declared scheme."""
