"""POST and GET /api/v1/audit-logs: recording enqueues (202) for the key's organisation only, a
repeated event id is recorded once, Redis down is a 503 that says so, and reading returns the
caller's organisation's events, filtered and paged - end to end through the real worker."""

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from forgestack_api.main import create_app
from forgestack_db.database import Database
from forgestack_db.migrate import upgrade_async
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker
from forgestack_shared.settings import Settings, get_settings
from forgestack_worker.registry import HANDLERS
from forgestack_worker.settings import on_shutdown, on_startup
from redis.asyncio import Redis

from tests.api.test_api_keys import OPERATOR_KEY, as_key
from tests.conftest import free_port, start_redis_server
from tests.fixtures_db import make_org_keys

EVENT = {
    "actor_id": "user-7",
    "actor_type": "user",
    "actor_name": "Jane",
    "actor_email": "jane@acme.example.com",
    "action": "project.renamed",
    "resource_type": "project",
    "resource_id": "p-1",
    "changes": {"before": {"name": "a"}, "after": {"name": "b"}},
    "metadata": {"ticket": 12},
}


async def _queued(redis: Redis, prefix: str) -> list[dict[str, Any]]:
    page = await Queue(redis, "audit-logs", prefix=prefix).get_jobs(JobState.WAITING, limit=100)
    return [job.data for job in page.jobs]


async def _drain(redis_url: str, prefix: str) -> None:
    """The real worker, as deployed (on_startup opens the guarded database), until the queue is empty."""
    await run_burst_worker(
        redis_url, HANDLERS, prefix=prefix, on_startup=on_startup, on_shutdown=on_shutdown
    )


async def test_recording_enqueues_for_the_keys_organisation(
    pg_app: FastAPI, app_db: Database, redis: Redis, queue_prefix: str
) -> None:
    keys = await make_org_keys(app_db)
    async with as_key(pg_app, keys.member) as client:
        response = await client.post(
            "/api/v1/audit-logs", json=EVENT, headers={"user-agent": "acme-backend/1.0"}
        )
        smuggled = await client.post(
            "/api/v1/audit-logs", json=EVENT | {"org_id": str(uuid.uuid4())}
        )
    assert response.status_code == 202, response.text
    assert smuggled.status_code == 422
    (job,) = await _queued(redis, queue_prefix)
    assert job["org_id"] == str(keys.org_id)
    assert job["event_id"] == response.json()["event_id"]
    assert (job["actor_id"], job["actor_type"], job["user_agent"]) == (
        "user-7",
        "user",
        "acme-backend/1.0",
    )
    assert job["changes"] == EVENT["changes"] and job["metadata"] == {"ticket": 12}


async def test_the_actor_defaults_to_the_calling_key(
    pg_app: FastAPI, app_db: Database, redis: Redis, queue_prefix: str
) -> None:
    keys = await make_org_keys(app_db)
    async with as_key(pg_app, keys.owner) as client:
        assert (
            await client.post("/api/v1/audit-logs", json={"action": "x", "resource_type": "y"})
        ).status_code == 202
        half = await client.post(
            "/api/v1/audit-logs", json={"action": "x", "resource_type": "y", "actor_type": "user"}
        )
    assert half.status_code == 422
    (job,) = await _queued(redis, queue_prefix)
    assert job["actor_type"] == "api_key" and job["actor_name"] == "owner key"


async def test_the_same_event_id_is_recorded_once(
    pg_app: FastAPI, app_db: Database, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    keys = await make_org_keys(app_db)
    body = EVENT | {"event_id": str(uuid.uuid4())}
    async with as_key(pg_app, keys.member) as client:
        first = await client.post("/api/v1/audit-logs", json=body)
        again = await client.post("/api/v1/audit-logs", json=body)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {"event_id": body["event_id"], "created": False}
    await _drain(redis_url, queue_prefix)
    async with as_key(pg_app, keys.owner) as client:
        events = (await client.get("/api/v1/audit-logs")).json()["events"]
    assert [e["event_id"] for e in events] == [body["event_id"]]


async def test_oversized_or_invalid_events_are_422(pg_app: FastAPI, app_db: Database) -> None:
    keys = await make_org_keys(app_db)
    async with as_key(pg_app, keys.member) as client:
        huge = await client.post(
            "/api/v1/audit-logs", json=EVENT | {"metadata": {"blob": "x" * 70_000}}
        )
        bad_ip = await client.post("/api/v1/audit-logs", json=EVENT | {"ip_address": "999.1.1.1"})
        no_action = await client.post("/api/v1/audit-logs", json={"resource_type": "r"})
    assert (huge.status_code, bad_ip.status_code, no_action.status_code) == (422, 422, 422)


@pytest.mark.parametrize(
    "fields",
    [{"action": "user.x\u0000"}, {"metadata": {"note": ["a\u0000"]}}, {"metadata": {"k\u0000": 1}}],
)
async def test_a_nul_character_is_refused_before_the_event_is_queued(
    pg_app: FastAPI, app_db: Database, fields: dict[str, Any]
) -> None:
    """PostgreSQL cannot store U+0000: an accepted event would fail every write in the worker."""
    keys = await make_org_keys(app_db)
    async with as_key(pg_app, keys.owner) as client:
        refused = await client.post("/api/v1/audit-logs", json=EVENT | fields)
        queued = await client.get("/api/v1/queues/audit-logs/jobs", params={"state": "waiting"})
    assert refused.status_code == 422, refused.text
    assert "NUL" in refused.text
    assert queued.json()["jobs"] == []


async def test_events_are_read_back_for_the_callers_organisation_only(
    pg_app: FastAPI, app_db: Database, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    ours, theirs = await make_org_keys(app_db), await make_org_keys(app_db)
    async with as_key(pg_app, ours.member) as client:
        for i in range(5):
            body = EVENT | {
                "action": "doc.edited" if i % 2 else "doc.viewed",
                "actor_id": f"u{i % 2}",
            }
            body["occurred_at"] = f"2025-05-0{i + 1}T10:00:00Z"
            assert (await client.post("/api/v1/audit-logs", json=body)).status_code == 202
    async with as_key(pg_app, theirs.member) as client:
        assert (await client.post("/api/v1/audit-logs", json=EVENT)).status_code == 202
    await _drain(redis_url, queue_prefix)

    async with as_key(pg_app, ours.owner) as client:
        everything = (await client.get("/api/v1/audit-logs")).json()["events"]
        assert len(everything) == 5 and {e["org_id"] for e in everything} == {str(ours.org_id)}
        assert [e["occurred_at"][:10] for e in everything] == [
            f"2025-05-0{d}" for d in (5, 4, 3, 2, 1)
        ]

        edited = (await client.get("/api/v1/audit-logs", params={"action": "doc.edited"})).json()
        assert {e["action"] for e in edited["events"]} == {"doc.edited"} and len(
            edited["events"]
        ) == 2
        ranged = await client.get(
            "/api/v1/audit-logs",
            params={"from": "2025-05-02T00:00:00Z", "to": "2025-05-04T00:00:00Z"},
        )
        assert [e["occurred_at"][:10] for e in ranged.json()["events"]] == [
            "2025-05-03",
            "2025-05-02",
        ]
        by_actor = (
            await client.get(
                "/api/v1/audit-logs", params={"actor_id": "u1", "resource_type": "project"}
            )
        ).json()
        assert {e["actor_id"] for e in by_actor["events"]} == {"u1"} and len(
            by_actor["events"]
        ) == 2

        pages, cursor, seen = 0, None, []
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/api/v1/audit-logs", params=params)).json()
            seen += [e["event_id"] for e in page["events"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3 and seen == [e["event_id"] for e in everything]

        assert (
            await client.get("/api/v1/audit-logs", params={"cursor": "garbage"})
        ).status_code == 400
        naive = await client.get("/api/v1/audit-logs", params={"from": "2025-05-02T00:00:00"})
        assert naive.status_code == 422

    async with as_key(pg_app, theirs.admin) as client:
        (theirs_only,) = (await client.get("/api/v1/audit-logs")).json()["events"]
    assert theirs_only["org_id"] == str(theirs.org_id)


async def test_the_operator_records_and_reads_platform_level_events(
    pg_app: FastAPI, app_db: Database, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    tenant = await make_org_keys(app_db)
    async with as_key(pg_app, OPERATOR_KEY) as client:
        recorded = await client.post(
            "/api/v1/audit-logs", json={"action": "platform.maintenance", "resource_type": "system"}
        )
    assert recorded.status_code == 202
    await _drain(redis_url, queue_prefix)
    async with as_key(pg_app, OPERATOR_KEY) as client:
        events = (
            await client.get("/api/v1/audit-logs", params={"action": "platform.maintenance"})
        ).json()["events"]
    assert recorded.json()["event_id"] in {e["event_id"] for e in events}
    assert {e["org_id"] for e in events} == {None}
    async with as_key(pg_app, tenant.owner) as client:
        assert (
            await client.get("/api/v1/audit-logs", params={"action": "platform.maintenance"})
        ).json()["events"] == []


async def test_redis_down_is_a_503_never_a_silent_drop(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SQLite (the dev default) for the keys; a Redis of our own, stopped while the app runs."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="fs-audit-redis-"))
    server = start_redis_server(port, workdir)
    try:
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
        get_settings.cache_clear()
        await upgrade_async(get_settings().effective_database_url)
        app = create_app()
        async with app.router.lifespan_context(app):
            keys = await make_org_keys(app.state.resources.db)
            async with as_key(app, keys.member) as client:
                assert (await client.post("/api/v1/audit-logs", json=EVENT)).status_code == 202
                server.terminate()
                server.wait(timeout=10)
                response = await client.post("/api/v1/audit-logs", json=EVENT)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    assert response.status_code == 503
    assert response.json()["dependency"] == "redis"
    assert "Redis" in response.json()["detail"]


async def test_the_sqlite_dev_path_end_to_end(
    settings: Settings, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    await upgrade_async(settings.effective_database_url)
    app = create_app()
    async with app.router.lifespan_context(app):
        keys = await make_org_keys(app.state.resources.db)
        async with as_key(app, keys.member) as client:
            assert (await client.post("/api/v1/audit-logs", json=EVENT)).status_code == 202
        await _drain(redis_url, queue_prefix)
        async with as_key(app, keys.owner) as client:
            events = (await client.get("/api/v1/audit-logs")).json()["events"]
    assert [e["action"] for e in events] == ["project.renamed"]
    assert events[0]["changes"] == EVENT["changes"]


async def test_state_changing_routes_record_their_own_events(
    pg_app: FastAPI, app_db: Database, redis: Redis, queue_prefix: str
) -> None:
    keys = await make_org_keys(app_db)
    job = {"data": {"user_id": "u1", "action": "greet"}}
    async with as_key(pg_app, keys.admin) as admin:
        job_id = (await admin.post("/api/v1/queues/my-new-job/jobs", json=job)).json()["id"]
        assert (await admin.delete(f"/api/v1/jobs/{job_id}")).status_code == 204
        assert (
            await admin.post("/api/v1/queues/my-new-job/jobs:bulk", json={"jobs": [job, job]})
        ).status_code == 202
        assert (await admin.post("/api/v1/queues/my-new-job/retry-failed")).status_code == 200
        clean = {"state": "completed", "older_than_s": 0}
        assert (await admin.post("/api/v1/queues/my-new-job/clean", json=clean)).status_code == 200
        email = {
            "to": "jane@acme.example.com",
            "subject": "Hi",
            "template": "notification",
            "variables": {"message": "m"},
        }
        assert (await admin.post("/api/v1/notifications/email", json=email)).status_code == 202
    async with as_key(pg_app, OPERATOR_KEY) as operator:
        assert (await operator.post("/api/v1/queues/my-new-job/jobs", json=job)).status_code == 202

    events = await _queued(redis, queue_prefix)
    by_action = {e["action"]: e for e in events}
    assert set(by_action) == {
        "job.enqueued",
        "job.removed",
        "jobs.enqueued",
        "queue.failed_retried",
        "queue.cleaned",
        "notification_email.queued",
    }
    removed = by_action["job.removed"]
    assert (removed["resource_id"], removed["org_id"], removed["actor_type"]) == (
        job_id,
        str(keys.org_id),
        "api_key",
    )
    assert removed["metadata"]["path"] == f"/api/v1/jobs/{job_id}"
    assert by_action["jobs.enqueued"]["metadata"]["created"] == 2
    operator_events = [e for e in events if e["org_id"] is None]
    assert [(e["action"], e["actor_id"]) for e in operator_events] == [("job.enqueued", "operator")]
