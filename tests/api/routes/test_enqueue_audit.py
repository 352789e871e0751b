"""POST /api/v1/queues/{queue}/jobs and its `job.enqueued` event: every new job has exactly one,
written in the job's own script call; an idempotent repeat, a clash and an invalid body record
none; the events belong to the caller's organisation, and another sees none of them. End to end
through the real worker, which writes them to the audit log."""

import httpx
import pytest
from fastapi import FastAPI
from forgestack_api.main import create_app
from forgestack_db.database import Database
from forgestack_db.migrate import upgrade_async
from forgestack_queue.producer import Queue
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker
from forgestack_shared.settings import Settings, get_settings
from forgestack_worker.registry import HANDLERS
from forgestack_worker.settings import on_shutdown, on_startup
from redis.asyncio import Redis

from tests.api.conftest import operator_client
from tests.api.test_api_keys import as_key
from tests.fixtures_db import make_org_keys
from tests.queue.reply_proxy import reply_dropping_proxy

JOBS = "/api/v1/queues/my-new-job/jobs"
DATA = {"user_id": "u1", "action": "greet"}


async def _post(client: httpx.AsyncClient, url: str, body: object, status: int) -> str | None:
    response = await client.post(url, json=body)
    assert response.status_code == status, response.text
    return response.json().get("id") if status in (200, 202) else None


async def test_each_new_job_has_one_event_and_no_other_answer_adds_one(
    pg_app: FastAPI, app_db: Database, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    mine, other = await make_org_keys(app_db), await make_org_keys(app_db)
    created: list[str | None] = []
    async with as_key(pg_app, mine.member) as client:
        for _ in range(3):
            created.append(await _post(client, JOBS, {"data": DATA}, 202))
        keyed = {"data": DATA, "options": {"job_id": "order-9"}}
        created.append(await _post(client, JOBS, keyed, 202))
        assert await _post(client, JOBS, keyed, 200) == "order-9"
        assert await _post(client, JOBS, {"data": {"user_id": "u1"}}, 422) is None
        email = {
            "data": {"to": "a@example.com", "subject": "s", "template": "notification"},
            "options": {"job_id": "order-9"},
        }
        assert await _post(client, "/api/v1/queues/notification-email/jobs", email, 409) is None

    def audit(org: object) -> Queue:
        return Queue(redis, "audit-logs", prefix=queue_prefix, owner=str(org))

    queued = (await audit(mine.org_id).get_jobs(JobState.WAITING, limit=100)).jobs
    assert sorted(job.data["resource_id"] for job in queued) == sorted(map(str, created))
    assert {(job.data["action"], job.data["org_id"]) for job in queued} == {
        ("job.enqueued", str(mine.org_id))
    }
    assert (await audit(other.org_id).counts())[JobState.WAITING] == 0

    await run_burst_worker(
        redis_url, HANDLERS, prefix=queue_prefix, on_startup=on_startup, on_shutdown=on_shutdown
    )
    async with as_key(pg_app, mine.owner) as client:
        events = (await client.get("/api/v1/audit-logs", params={"limit": 100})).json()["events"]
    assert sorted(e["resource_id"] for e in events) == sorted(map(str, created))
    assert {e["action"] for e in events} == {"job.enqueued"}
    async with as_key(pg_app, other.owner) as client:
        theirs = await client.get("/api/v1/audit-logs", params={"limit": 100})
    assert theirs.status_code == 200 and theirs.json()["events"] == []


async def _post_twice_first_reply_lost(
    monkeypatch: pytest.MonkeyPatch, redis: Redis, redis_url: str, url: str, body: object
) -> tuple[httpx.Response, httpx.Response]:
    """Posts `body` twice as the operator, through a proxy that drops the first add_followed
    reply: the add runs, its answer never reaches the API."""
    sha = scripts_for(redis).add_followed.sha.encode()
    async with reply_dropping_proxy(redis_url) as (proxy, proxied):
        monkeypatch.setenv("REDIS_URL", proxied)
        get_settings.cache_clear()
        await upgrade_async(get_settings().effective_database_url)
        app = create_app()
        async with app.router.lifespan_context(app), operator_client(app) as client:
            proxy.drop_replies_to(sha, times=1)
            lost = await client.post(url, json=body)
            retried = await client.post(url, json=body)
    assert proxy.dropped == 1
    return lost, retried


async def test_a_lost_reply_and_its_retry_leave_the_job_with_its_one_event(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
) -> None:
    """The add ran but its answer never came back (the client gets a 503) and the client retries
    the same `job_id` (a 200: the job exists). The event was written in the job's own call, so it
    exists too; written by a second call after the first, it was never written at all."""
    body = {"data": DATA, "options": {"job_id": "pay-1"}}
    lost, retried = await _post_twice_first_reply_lost(monkeypatch, redis, redis_url, JOBS, body)
    assert lost.status_code == 503, lost.text
    assert retried.status_code == 200 and retried.json()["created"] is False
    events = (await Queue(redis, "audit-logs", prefix=queue_prefix).get_jobs(JobState.WAITING)).jobs
    assert [(e.data["action"], e.data["resource_id"]) for e in events] == [
        ("job.enqueued", "pay-1")
    ]


BULK = "/api/v1/queues/my-new-job/jobs:bulk"


def _bulk_events(redis: Redis, queue_prefix: str, org: object) -> Queue:
    return Queue(redis, "audit-logs", prefix=queue_prefix, owner=str(org))


async def test_a_bulk_add_has_one_event_counting_its_new_jobs_and_a_repeat_adds_none(
    pg_app: FastAPI, app_db: Database, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    mine, other = await make_org_keys(app_db), await make_org_keys(app_db)
    keyed = [{"data": DATA, "options": {"job_id": f"bulk-{n}"}} for n in range(2)]
    async with as_key(pg_app, mine.member) as client:
        first = await client.post(BULK, json={"jobs": [*keyed, {"data": DATA}]})
        again = await client.post(BULK, json={"jobs": keyed})
        partly = await client.post(BULK, json={"jobs": [*keyed, {"data": DATA}]})
    assert first.status_code == again.status_code == partly.status_code == 202
    assert [job["created"] for job in again.json()] == [False, False]
    queued = (await _bulk_events(redis, queue_prefix, mine.org_id).get_jobs(JobState.WAITING)).jobs
    assert sorted(
        (e.data["action"], e.data["resource_id"], e.data["metadata"]["created"]) for e in queued
    ) == [("jobs.enqueued", "my-new-job", 1), ("jobs.enqueued", "my-new-job", 3)]
    assert {e.data["org_id"] for e in queued} == {str(mine.org_id)}
    assert (await _bulk_events(redis, queue_prefix, other.org_id).counts())[JobState.WAITING] == 0

    await run_burst_worker(
        redis_url, HANDLERS, prefix=queue_prefix, on_startup=on_startup, on_shutdown=on_shutdown
    )
    async with as_key(pg_app, mine.owner) as client:
        events = (await client.get("/api/v1/audit-logs", params={"limit": 100})).json()["events"]
    assert sorted(e["metadata"]["created"] for e in events if e["action"] == "jobs.enqueued") == [
        1,
        3,
    ]
    async with as_key(pg_app, other.owner) as client:
        theirs = await client.get("/api/v1/audit-logs", params={"limit": 100})
    assert theirs.status_code == 200 and theirs.json()["events"] == []


async def test_a_bulk_lost_reply_and_its_retry_leave_the_jobs_with_their_one_event(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
) -> None:
    """The bulk add ran but its answer was lost (503); the retry of the same ids creates nothing
    and records nothing. The first call's event, counting both jobs, was written with them; as a
    second call after the add it was never written at all."""
    body = {"jobs": [{"data": DATA, "options": {"job_id": f"pay-b{n}"}} for n in (1, 2)]}
    lost, retried = await _post_twice_first_reply_lost(monkeypatch, redis, redis_url, BULK, body)
    assert lost.status_code == 503, lost.text
    assert retried.status_code == 202 and [j["created"] for j in retried.json()] == [False, False]
    events = (await Queue(redis, "audit-logs", prefix=queue_prefix).get_jobs(JobState.WAITING)).jobs
    assert [(e.data["action"], e.data["metadata"]["created"]) for e in events] == [
        ("jobs.enqueued", 2)
    ]
