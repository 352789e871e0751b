"""API keys: generated with 256 random bits (`key_format`), shown once, stored as SHA-256,
revocable."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .key_format import KEY_SCHEME as KEY_SCHEME
from .key_format import LAST_USED_RESOLUTION as LAST_USED_RESOLUTION
from .key_format import generate_secret as generate_secret
from .key_format import hash_key as hash_key
from .key_format import looks_like_key as looks_like_key
from .models import ApiKey, ApiKeyRole
from .types import utcnow


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    record: ApiKey
    secret: str
    """The full key. It exists only here; the database keeps its hash."""


async def issue_api_key(
    session: AsyncSession, org_id: uuid.UUID, role: ApiKeyRole, name: str
) -> IssuedApiKey:
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("API key name must be 1 to 100 characters")
    secret, prefix = generate_secret()
    record = ApiKey(org_id=org_id, name=name, prefix=prefix, key_hash=hash_key(secret), role=role)
    session.add(record)
    await session.flush()
    return IssuedApiKey(record=record, secret=secret)


async def find_active_key(session: AsyncSession, secret: str) -> ApiKey | None:
    """The unrevoked key whose hash matches; needs a service context (the org is not known yet)."""
    return await find_active_key_by_hash(session, hash_key(secret))


async def find_active_key_by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    statement = select(ApiKey).where(ApiKey.key_hash == key_hash, col(ApiKey.revoked_at).is_(None))
    return (await session.exec(statement)).first()


async def mark_used(session: AsyncSession, key: ApiKey, now: datetime | None = None) -> None:
    now = now or utcnow()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    await session.exec(sa.update(ApiKey).where(col(ApiKey.id) == key.id).values(last_used_at=now))
    key.last_used_at = now


async def revoke_api_key(session: AsyncSession, key_id: uuid.UUID) -> ApiKey | None:
    """Revokes the key if this context can see it; None if it cannot (unknown or another org's)."""
    key = (await session.exec(select(ApiKey).where(ApiKey.id == key_id))).first()
    if key is None:
        return None
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        await session.flush()
    return key


async def list_api_keys(session: AsyncSession, org_id: uuid.UUID) -> list[ApiKey]:
    statement = (
        select(ApiKey).where(ApiKey.org_id == org_id).order_by(col(ApiKey.created_at).desc())
    )
    return list((await session.exec(statement)).all())


async def count_api_keys(session: AsyncSession) -> int:
    return int((await session.exec(select(sa.func.count()).select_from(ApiKey))).one())


@dataclass(frozen=True, slots=True)
class RevokedKey:
    id: uuid.UUID
    org_id: uuid.UUID
    prefix: str


async def revoke_idle_api_keys(
    session: AsyncSession, idle_for: timedelta, now: datetime | None = None
) -> list[RevokedKey]:
    """Revokes every key unused for `idle_for` (never used: counted from its creation), in one
    statement; needs a service context, as it spans organisations."""
    now = now or utcnow()
    last_seen = sa.func.coalesce(col(ApiKey.last_used_at), col(ApiKey.created_at))
    statement = (
        sa.update(ApiKey)
        .where(col(ApiKey.revoked_at).is_(None), last_seen < now - idle_for)
        .values(revoked_at=now)
        .returning(col(ApiKey.id), col(ApiKey.org_id), col(ApiKey.prefix))
    )
    rows = (await session.exec(statement)).all()
    return [RevokedKey(id=row[0], org_id=row[1], prefix=row[2]) for row in rows]
