"""Tenant routes: the caller's organisation comes from its API key, never from the request, and
the database is reached only through `tenant_context` for that organisation."""

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, HTTPException, Request, status
from forgestack_db.key_roles import ApiKeyRole

from .auth import Principal, Role
from .deps import PrincipalDep
from .guarded_database import GuardedDatabase
from .lifespan import resources_of


@dataclass(frozen=True, slots=True)
class TenantPrincipal:
    """A caller bound to an organisation (a database API key), as tenant routes need."""

    principal: Principal
    org_id: UUID

    @property
    def role(self) -> ApiKeyRole:
        return ApiKeyRole(self.principal.role.value)

    @property
    def user_id(self) -> str | None:
        return self.principal.key_id

    def outranks_or_equals(self, role: Role) -> bool:
        return self.principal.at_least(role)


async def _database(request: Request) -> GuardedDatabase:
    return GuardedDatabase(resources_of(request).db)


DatabaseDep = Annotated[GuardedDatabase, Depends(_database)]


async def require_tenant(principal: PrincipalDep) -> TenantPrincipal:
    """403 for the operator key: it belongs to no organisation, so a tenant route has no data."""
    if principal.org_id is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "this route needs an API key bound to an organisation"
        )
    return TenantPrincipal(principal=principal, org_id=principal.org_id)


TenantDep = Annotated[TenantPrincipal, Depends(require_tenant)]


async def require_tenant_manager(tenant: TenantDep) -> TenantPrincipal:
    """Owners and admins manage their organisation (keys, audit log); members do not."""
    if not tenant.outranks_or_equals(Role.OWNER):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this route needs an owner or admin key")
    return tenant


TenantManagerDep = Annotated[TenantPrincipal, Depends(require_tenant_manager)]
