"""API keys of the caller's organisation: list, create (the secret is shown once), revoke.
Owners and admins only; nobody can mint a key above their own role."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Response, status
from forgestack_db.api_keys import issue_api_key, list_api_keys, revoke_api_key
from forgestack_db.models import ApiKey, ApiKeyRole
from pydantic import BaseModel, Field, StringConstraints

from ..audit import AuditDep
from ..auth import Role
from ..deps import ResourcesDep
from ..tenant import DatabaseDep, TenantManagerDep

router = APIRouter(prefix="/api-keys", tags=["api keys"])


class ApiKeyInfo(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's visible start, to tell keys apart.")
    role: ApiKeyRole
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> "ApiKeyInfo":
        return cls.model_validate(key.model_dump(exclude={"key_hash", "org_id"}))


class ApiKeyCreated(ApiKeyInfo):
    key: str = Field(description="The secret. Shown this once; only its hash is stored.")


class ApiKeyCreateRequest(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    role: ApiKeyRole = ApiKeyRole.MEMBER


@router.get("", summary="The organisation's API keys, newest first (no secrets)")
async def list_keys(tenant: TenantManagerDep, db: DatabaseDep) -> list[ApiKeyInfo]:
    async with db.tenant_context(tenant.org_id, tenant.user_id, tenant.role) as session:
        return [ApiKeyInfo.of(key) for key in await list_api_keys(session, tenant.org_id)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key for the organisation",
    responses={403: {"description": "The role asked for is above the caller's."}},
)
async def create_key(
    body: ApiKeyCreateRequest, tenant: TenantManagerDep, db: DatabaseDep, audit: AuditDep
) -> ApiKeyCreated:
    if not tenant.outranks_or_equals(Role(body.role.value)):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"a {tenant.role} key cannot create {body.role} keys"
        )
    async with db.tenant_context(tenant.org_id, tenant.user_id, tenant.role) as session:
        issued = await issue_api_key(session, tenant.org_id, body.role, body.name)
    info = ApiKeyInfo.of(issued.record)
    await audit.record(
        "api_key.created",
        "api_key",
        str(info.id),
        resource_name=info.name,
        after={"prefix": info.prefix, "role": info.role.value},
    )
    return ApiKeyCreated(**info.model_dump(), key=issued.secret)


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a key (it stops working at once on this API process, within "
    "API_KEY_CACHE_TTL_S on the others; revoking twice is harmless)",
    responses={404: {"description": "No key with this id in the organisation."}},
)
async def revoke_key(
    key_id: uuid.UUID,
    tenant: TenantManagerDep,
    db: DatabaseDep,
    audit: AuditDep,
    resources: ResourcesDep,
) -> Response:
    async with db.tenant_context(tenant.org_id, tenant.user_id, tenant.role) as session:
        key = await revoke_api_key(session, key_id)
    if key is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such API key in this organisation")
    resources.api_keys.forget(str(key.id))
    await audit.record(
        "api_key.revoked",
        "api_key",
        str(key.id),
        resource_name=key.name,
        after={"revoked_at": key.revoked_at.isoformat() if key.revoked_at else None},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
