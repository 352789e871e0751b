"""The README's roles table through HTTP: members enqueue and read their organisation's jobs,
owners (and an organisation's admins) also retry, remove and clean them, and only the operator
writes raw audit-log jobs. A refused action writes nothing."""

from typing import Any

import pytest
from fastapi import FastAPI
from forgestack_db.database import Database
from forgestack_queue.producer import Queue
from redis.asyncio import Redis

from tests.api.test_api_keys import OPERATOR_KEY, as_key
from tests.fixtures_db import make_org_keys

QUEUE = "/api/v1/queues/my-new-job"
JOB = {"data": {"user_id": "u", "action": "greet"}}
AUDIT_JOB = {
    "data": {
        "event_id": "6f1c3a52-4bb4-4e55-a2a5-3d1f1f7c9a01",
        "org_id": None,
        "actor_id": "x",
        "actor_type": "user",
        "action": "forged",
        "resource_type": "thing",
    }
}


async def _totals(redis: Redis, prefix: str) -> dict[str, int]:
    totals = {}
    for name in ("my-new-job", "audit-logs"):
        counts = await Queue(redis, name, prefix=prefix).counts()
        totals[name] = sum(counts.values())
    return totals


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/jobs/{id}/retry", None),
        ("DELETE", "/api/v1/jobs/{id}", None),
        ("POST", f"{QUEUE}/retry-failed", None),
        ("POST", f"{QUEUE}/clean", {"state": "waiting", "older_than_s": 0}),
        ("POST", "/api/v1/queues/audit-logs/jobs", AUDIT_JOB),
        ("POST", "/api/v1/queues/audit-logs/jobs:bulk", {"jobs": [AUDIT_JOB]}),
        ("GET", "/api/v1/queues/audit-logs/jobs?state=waiting", None),
    ],
)
async def test_a_member_may_not_and_nothing_is_written(
    pg_app: FastAPI,
    app_db: Database,
    redis: Redis,
    queue_prefix: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    keys = await make_org_keys(app_db)
    async with as_key(pg_app, keys.member) as member:
        job_id = (await member.post(f"{QUEUE}/jobs", json=JOB)).json()["id"]
        assert (await member.get(f"/api/v1/jobs/{job_id}")).status_code == 200
        before = await _totals(redis, queue_prefix)
        response = await member.request(method, path.format(id=job_id), json=body)
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden"
        assert await _totals(redis, queue_prefix) == before
        assert (await member.get(f"/api/v1/jobs/{job_id}")).json()["state"] == "waiting"


async def test_a_member_may_not_read_its_organisations_queued_audit_events(
    pg_app: FastAPI, app_db: Database, redis: Redis, queue_prefix: str
) -> None:
    keys = await make_org_keys(app_db)
    async with as_key(pg_app, keys.member) as member:
        await member.post(f"{QUEUE}/jobs", json=JOB)
    async with as_key(pg_app, keys.owner) as owner:
        page = await owner.get("/api/v1/queues/audit-logs/jobs", params={"state": "waiting"})
        (audit_job,) = page.json()["jobs"]
    async with as_key(pg_app, keys.member) as member:
        assert (await member.get(f"/api/v1/jobs/{audit_job['id']}")).status_code == 403


@pytest.mark.parametrize("role", ["owner", "admin"])
async def test_owners_and_org_admins_manage_their_organisations_jobs(
    pg_app: FastAPI, app_db: Database, role: str
) -> None:
    keys = await make_org_keys(app_db)
    async with as_key(pg_app, getattr(keys, role)) as client:
        job_id = (await client.post(f"{QUEUE}/jobs", json=JOB)).json()["id"]
        assert (await client.post(f"/api/v1/jobs/{job_id}/retry")).status_code == 409
        assert (await client.delete(f"/api/v1/jobs/{job_id}")).status_code == 204
        assert (await client.post(f"{QUEUE}/retry-failed")).status_code == 200
        clean = {"state": "waiting", "older_than_s": 0}
        assert (await client.post(f"{QUEUE}/clean", json=clean)).status_code == 200
        # An organisation's admin is not the operator: raw audit-log jobs stay operator-only.
        raw = await client.post("/api/v1/queues/audit-logs/jobs", json=AUDIT_JOB)
        assert raw.status_code == 403


async def test_the_operator_writes_raw_audit_jobs_and_has_no_tenant_routes(
    pg_app: FastAPI,
) -> None:
    async with as_key(pg_app, OPERATOR_KEY) as operator:
        raw = await operator.post("/api/v1/queues/audit-logs/jobs", json=AUDIT_JOB)
        assert raw.status_code == 202, raw.text
        assert (await operator.get("/api/v1/api-keys")).status_code == 403


async def test_an_unknown_queue_is_404_before_any_role_check(
    pg_app: FastAPI, app_db: Database
) -> None:
    keys = await make_org_keys(app_db)
    async with as_key(pg_app, keys.member) as member:
        for response in (
            await member.post("/api/v1/queues/nope/jobs", json=JOB),
            await member.post(
                "/api/v1/queues/nope/clean", json={"state": "waiting", "older_than_s": 0}
            ),
        ):
            assert response.status_code == 404
            assert response.json()["code"] == "unknown_queue"
