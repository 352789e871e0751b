"""API keys in the database: only a hash is stored, the prefix identifies a key, revoked keys stop
matching, `last_used_at` is refreshed at most once a minute, and a tenant cannot revoke another
organisation's key. Runs on PostgreSQL (as the application login) and on SQLite."""

import hashlib
import uuid
from datetime import timedelta

import pytest
from forgestack_db.api_keys import (
    find_active_key,
    issue_api_key,
    list_api_keys,
    looks_like_key,
    mark_used,
    revoke_api_key,
)
from forgestack_db.database import Database
from forgestack_db.models import ApiKey, ApiKeyRole
from sqlmodel import select

from tests.db.helpers import make_org


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request: pytest.FixtureRequest) -> Database:
    """Only the requested backend's fixture is set up (a sync fixture may resolve async ones)."""
    found = request.getfixturevalue("app_db" if request.param == "postgresql" else "sqlite_db")
    assert isinstance(found, Database)
    return found


async def test_only_the_hash_is_stored_and_the_prefix_identifies_the_key(db: Database) -> None:
    org = await make_org(db)
    async with db.service_context("test: issue") as session:
        issued = await issue_api_key(session, org, ApiKeyRole.OWNER, "ci")
    secret = issued.secret
    assert looks_like_key(secret)
    assert secret.startswith(issued.record.prefix + "_")
    assert len(secret) - len(issued.record.prefix) > 40  # 256 random bits after the prefix
    async with db.service_context("test: read back") as session:
        stored = (await session.exec(select(ApiKey).where(ApiKey.id == issued.record.id))).one()
    assert stored.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in str(value) for value in stored.model_dump().values())


async def test_keys_are_unique(db: Database) -> None:
    org = await make_org(db)
    async with db.service_context("test: issue") as session:
        secrets_ = {
            (await issue_api_key(session, org, ApiKeyRole.MEMBER, "k")).secret for _ in range(20)
        }
    assert len(secrets_) == 20


async def test_a_revoked_key_no_longer_matches(db: Database) -> None:
    org = await make_org(db)
    async with db.service_context("test: issue") as session:
        issued = await issue_api_key(session, org, ApiKeyRole.ADMIN, "to revoke")
    async with db.service_context("test: find") as session:
        assert (await find_active_key(session, issued.secret)) is not None
        assert (await find_active_key(session, issued.secret + "x")) is None
    async with db.tenant_context(org, role=ApiKeyRole.ADMIN) as session:
        revoked = await revoke_api_key(session, issued.record.id)
        assert revoked is not None and revoked.revoked_at is not None
    async with db.service_context("test: find") as session:
        assert (await find_active_key(session, issued.secret)) is None


async def test_last_used_is_refreshed_at_most_once_a_minute(db: Database) -> None:
    org = await make_org(db)
    async with db.service_context("test: issue") as session:
        issued = await issue_api_key(session, org, ApiKeyRole.MEMBER, "busy")
    async with db.service_context("test: use") as session:
        key = await find_active_key(session, issued.secret)
        assert key is not None and key.last_used_at is None
        await mark_used(session, key)
        first = key.last_used_at
        assert first is not None
        await mark_used(session, key, first + timedelta(seconds=30))
        assert key.last_used_at == first
        await mark_used(session, key, first + timedelta(minutes=2))
    async with db.service_context("test: read") as session:
        stored = (await session.exec(select(ApiKey).where(ApiKey.id == issued.record.id))).one()
    assert stored.last_used_at == first + timedelta(minutes=2)


async def test_a_tenant_cannot_revoke_or_list_another_orgs_keys(app_db: Database) -> None:
    org_a, org_b = await make_org(app_db), await make_org(app_db)
    async with app_db.service_context("test: issue") as session:
        b_key = await issue_api_key(session, org_b, ApiKeyRole.ADMIN, "b")
    async with app_db.tenant_context(org_a, role=ApiKeyRole.ADMIN) as session:
        assert await revoke_api_key(session, b_key.record.id) is None
        # Even asking for B's keys by org id returns nothing: the policy, not the query, decides.
        assert await list_api_keys(session, org_b) == []
    async with app_db.service_context("test: find") as session:
        assert (await find_active_key(session, b_key.secret)) is not None


async def test_unknown_ids_and_bad_names(db: Database) -> None:
    org = await make_org(db)
    async with db.tenant_context(org) as session:
        assert await revoke_api_key(session, uuid.uuid4()) is None
    with pytest.raises(ValueError, match="1 to 100"):
        async with db.service_context("test: issue") as session:
            await issue_api_key(session, org, ApiKeyRole.MEMBER, "  ")
