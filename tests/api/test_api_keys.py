"""Database API keys over HTTP: a key authenticates as its organisation and role, revoked or
unknown keys are 401, roles are enforced (403), the secret is shown once and stored hashed, and
key management is audited. The operator key keeps working beside them."""

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from forgestack_db.database import Database
from forgestack_db.models import ApiKey
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from redis.asyncio import Redis
from sqlmodel import select

from tests.fixtures_db import make_org_keys

OPERATOR_KEY = "test-admin-key"


@asynccontextmanager
async def as_key(app: FastAPI, key: str | None) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api.test", headers=headers
    ) as client:
        yield client


async def _audit_actions(redis: Redis, prefix: str) -> list[dict[str, Any]]:
    page = await Queue(redis, "audit-logs", prefix=prefix).get_jobs(JobState.WAITING, limit=100)
    return [job.data for job in page.jobs]


async def test_missing_unknown_and_malformed_keys_are_401(pg_app: FastAPI) -> None:
    for key in (None, "fsk_00000000_" + "x" * 43, "not-a-key"):
        async with as_key(pg_app, key) as client:
            response = await client.get("/api/v1/api-keys")
        assert response.status_code == 401, key
        assert response.headers["www-authenticate"] == "Bearer"


async def test_roles_decide_what_a_key_may_do(pg_app: FastAPI, app_db: Database) -> None:
    keys = await make_org_keys(app_db)
    expected = {
        # (key, route): status. Every key reads its own organisation's queues (see test_tenancy).
        (keys.member, "/api/v1/api-keys"): 403,
        (keys.member, "/api/v1/audit-logs"): 403,
        (keys.member, "/api/v1/queues"): 200,
        (keys.member, "/api/v1/queues/audit-logs/jobs?state=waiting"): 403,
        (keys.owner, "/api/v1/api-keys"): 200,
        (keys.owner, "/api/v1/audit-logs"): 200,
        (keys.owner, "/api/v1/queues"): 200,
        (keys.owner, "/api/v1/queues/audit-logs/jobs?state=waiting"): 200,
        (keys.admin, "/api/v1/api-keys"): 200,
        (keys.admin, "/api/v1/queues"): 200,
        # The operator key belongs to no organisation: tenant routes have nothing for it.
        (OPERATOR_KEY, "/api/v1/api-keys"): 403,
        (OPERATOR_KEY, "/api/v1/queues"): 200,
    }
    for (key, route), status in expected.items():
        async with as_key(pg_app, key) as client:
            assert (await client.get(route)).status_code == status, (key[:12], route)


async def test_a_created_key_is_shown_once_stored_hashed_and_works(
    pg_app: FastAPI, app_db: Database, redis: Redis, queue_prefix: str
) -> None:
    keys = await make_org_keys(app_db)
    async with as_key(pg_app, keys.owner) as owner:
        created = await owner.post(
            "/api/v1/api-keys", json={"name": "deploy bot", "role": "member"}
        )
        assert created.status_code == 201, created.text
        body = created.json()
        secret = body["key"]
        assert secret.startswith(body["prefix"] + "_") and body["role"] == "member"
        listed = (await owner.get("/api/v1/api-keys")).json()
    assert body["id"] in {k["id"] for k in listed}
    assert all("key" not in k and "key_hash" not in k for k in listed)
    assert secret not in str(listed)
    async with app_db.service_context("test: read back") as session:
        stored = (await session.exec(select(ApiKey).where(ApiKey.prefix == body["prefix"]))).one()
    assert stored.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert stored.org_id == keys.org_id and stored.last_used_at is None
    async with as_key(pg_app, secret) as new_key:
        assert (await new_key.get("/api/v1/audit-logs")).status_code == 403  # a member key
    async with app_db.service_context("test: read back") as session:
        used = (await session.exec(select(ApiKey).where(ApiKey.id == stored.id))).one()
    assert used.last_used_at is not None
    events = await _audit_actions(redis, queue_prefix)
    (event,) = [e for e in events if e["action"] == "api_key.created"]
    assert event["org_id"] == str(keys.org_id) and event["resource_id"] == body["id"]
    assert secret not in str(event)


async def test_nobody_mints_a_key_above_their_role(pg_app: FastAPI, app_db: Database) -> None:
    keys = await make_org_keys(app_db)
    async with as_key(pg_app, keys.owner) as owner:
        response = await owner.post("/api/v1/api-keys", json={"name": "escalate", "role": "admin"})
    assert response.status_code == 403
    async with as_key(pg_app, keys.admin) as admin:
        response = await admin.post("/api/v1/api-keys", json={"name": "ok", "role": "admin"})
    assert response.status_code == 201
    async with as_key(pg_app, keys.member) as member:
        response = await member.post("/api/v1/api-keys", json={"name": "x", "role": "member"})
    assert response.status_code == 403


async def test_a_revoked_key_is_401_at_once(
    pg_app: FastAPI, app_db: Database, redis: Redis, queue_prefix: str
) -> None:
    keys = await make_org_keys(app_db)
    async with as_key(pg_app, keys.admin) as admin:
        created = (await admin.post("/api/v1/api-keys", json={"name": "temp"})).json()
        async with as_key(pg_app, created["key"]) as temp:
            assert (
                await temp.post("/api/v1/audit-logs", json={"action": "a", "resource_type": "r"})
            ).status_code == 202
            assert (await admin.delete(f"/api/v1/api-keys/{created['id']}")).status_code == 204
            assert (
                await temp.post("/api/v1/audit-logs", json={"action": "a", "resource_type": "r"})
            ).status_code == 401
        assert (await admin.delete(f"/api/v1/api-keys/{created['id']}")).status_code == 204
        listed = {k["id"]: k for k in (await admin.get("/api/v1/api-keys")).json()}
    assert listed[created["id"]]["revoked_at"] is not None
    actions = [e["action"] for e in await _audit_actions(redis, queue_prefix)]
    assert "api_key.revoked" in actions


async def test_another_organisations_key_cannot_be_revoked(
    pg_app: FastAPI, app_db: Database
) -> None:
    ours, theirs = await make_org_keys(app_db), await make_org_keys(app_db)
    async with as_key(pg_app, theirs.admin) as admin:
        their_ids = [k["id"] for k in (await admin.get("/api/v1/api-keys")).json()]
    async with as_key(pg_app, ours.admin) as admin:
        for key_id in their_ids:
            assert (await admin.delete(f"/api/v1/api-keys/{key_id}")).status_code == 404
        our_ids = {k["id"] for k in (await admin.get("/api/v1/api-keys")).json()}
    assert not our_ids & set(their_ids)
    async with as_key(pg_app, theirs.member) as member:
        assert (
            await member.post("/api/v1/audit-logs", json={"action": "a", "resource_type": "r"})
        ).status_code == 202
