"""/api/v1/webhooks end to end on PostgreSQL, a real worker and a loopback receiver: endpoints
(secret shown once), the SSRF check at creation, event fan-out in one bulk add, the delivery log
with filters and cursor, retry, rotation, and another organisation seeing none of it."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from forgestack_api.webhooks import webhook_resolver
from forgestack_db.database import Database
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_shared.settings import Settings
from redis.asyncio import Redis
from standardwebhooks.webhooks import Webhook

from tests.api.test_api_keys import as_key
from tests.fixtures_db import make_org_keys
from tests.worker.handlers.webhook_fixtures import drain
from tests.worker.services.http_receiver import Receiver, Reply, receiving

BASE = "/api/v1/webhooks"


@pytest.fixture
def allow_loopback(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_ALLOWED_CIDRS", "127.0.0.0/8")
    monkeypatch.setenv("WEBHOOK_TIMEOUT_S", "2")


@pytest.fixture
async def app(allow_loopback: None, pg_app: FastAPI) -> FastAPI:
    return pg_app


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as receiver:
        yield receiver


async def _create(app: FastAPI, key: str, url: str, **fields: Any) -> dict[str, Any]:
    async with as_key(app, key) as client:
        response = await client.post(f"{BASE}/endpoints", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def test_the_secret_is_shown_once_and_members_only_read(
    app: FastAPI, app_db: Database, receiver: Receiver
) -> None:
    keys = await make_org_keys(app_db)
    created = await _create(app, keys.owner, receiver.url(), event_types=["invoice.paid"])
    secret = created["secret"]
    assert secret.startswith("whsec_")
    async with as_key(app, keys.member) as client:
        listed = await client.get(f"{BASE}/endpoints")
        one = await client.get(f"{BASE}/endpoints/{created['id']}")
        refused = await client.post(f"{BASE}/endpoints", json={"url": receiver.url()})
        not_deleted = await client.delete(f"{BASE}/endpoints/{created['id']}")
    assert listed.status_code == one.status_code == 200
    assert [e["id"] for e in listed.json()] == [created["id"]]
    for response in (listed, one):
        assert secret not in response.text and "secret" not in response.text.replace(
            "previous_secret_expires_at", ""
        )
    assert refused.status_code == not_deleted.status_code == 403


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.1/hook", "ftp://8.8.8.8/", "http://0x7f000001.0/", "http://meta.example.com/"],
)
async def test_a_url_the_guard_refuses_is_a_422_with_the_reason(
    app: FastAPI, app_db: Database, url: str
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["169.254.169.254"]

    app.dependency_overrides[webhook_resolver] = lambda: resolver
    keys = await make_org_keys(app_db)
    try:
        async with as_key(app, keys.owner) as client:
            response = await client.post(f"{BASE}/endpoints", json={"url": url})
    finally:
        app.dependency_overrides.clear()
    assert response.status_code == 422, response.text
    assert response.json()["code"] in ("webhook_url_refused", "invalid_request")
    assert response.json()["detail"]


async def test_fan_out_to_three_endpoints_with_one_failing(
    app: FastAPI,
    app_db: Database,
    receiver: Receiver,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
) -> None:
    keys = await make_org_keys(app_db)
    receiver.reply("/down", Reply(500, body=b"down"))
    good = [await _create(app, keys.owner, receiver.url(f"/up{i}")) for i in range(2)]
    bad = await _create(app, keys.owner, receiver.url("/down"), retry_schedule_s=[0])
    other = await _create(app, keys.owner, receiver.url("/other"), event_types=["user.created"])
    async with as_key(app, keys.owner) as client:
        sent = await client.post(
            f"{BASE}/events", json={"type": "invoice.paid", "data": {"invoice": 7}}
        )
    assert sent.status_code == 202, sent.text
    event_id = sent.json()["event_id"]
    assert len(sent.json()["delivery_ids"]) == 3
    waiting = await Queue(redis, "webhook-delivery", prefix=queue_prefix).get_jobs(JobState.WAITING)
    assert len(waiting.jobs) == 3
    for job in waiting.jobs:
        assert set(job.data) == {"org_id", "delivery_id"}
        assert not any(e["secret"] in repr(job) for e in (*good, bad))

    await drain(redis_url, queue_prefix)
    secrets = {f"/up{i}": good[i]["secret"] for i in range(2)} | {"/down": bad["secret"]}
    assert not receiver.to("/other")
    for request in receiver.requests:
        Webhook(secrets[request.path]).verify(request.body.decode(), request.headers)
        assert request.headers["webhook-id"] == event_id
    assert len(receiver.to("/down")) == 2

    async with as_key(app, keys.member) as client:
        failed = (await client.get(f"{BASE}/deliveries", params={"status": "failed"})).json()
        first = (await client.get(f"{BASE}/deliveries", params={"limit": 2})).json()
        rest = (
            await client.get(
                f"{BASE}/deliveries", params={"limit": 2, "cursor": first["next_cursor"]}
            )
        ).json()
        by_endpoint = (
            await client.get(f"{BASE}/deliveries", params={"endpoint_id": other["id"]})
        ).json()
        bad_cursor = await client.get(f"{BASE}/deliveries", params={"cursor": "nope"})
    (failure,) = failed["deliveries"]
    assert (failure["endpoint_id"], failure["response_status"], failure["attempt"]) == (
        bad["id"],
        500,
        2,
    )
    assert "webhook-signature" not in failure["request_headers"]
    assert len(first["deliveries"]) == 2 and rest["next_cursor"] is None
    ids = {d["id"] for d in first["deliveries"] + rest["deliveries"]}
    assert ids == set(sent.json()["delivery_ids"])
    assert by_endpoint["deliveries"] == []
    assert bad_cursor.status_code == 400

    receiver.reply("/down", Reply(200))
    async with as_key(app, keys.owner) as client:
        retried = await client.post(f"{BASE}/deliveries/{failure['id']}/retry")
        again = await client.post(f"{BASE}/deliveries/{failure['id']}/retry")
    assert retried.status_code == 202 and retried.json()["status"] == "pending"
    assert again.status_code == 409, "still pending"
    await drain(redis_url, queue_prefix)
    async with as_key(app, keys.member) as client:
        done = (await client.get(f"{BASE}/deliveries/{failure['id']}")).json()
    assert done["status"] == "delivered" and done["attempt"] == 1


async def test_rotation_signs_with_both_secrets_until_the_window_ends(
    app: FastAPI, app_db: Database, receiver: Receiver, redis_url: str, queue_prefix: str
) -> None:
    keys = await make_org_keys(app_db)
    created = await _create(app, keys.owner, receiver.url())
    async with as_key(app, keys.owner) as client:
        rotated = await client.post(f"{BASE}/endpoints/{created['id']}/rotate-secret")
        tested = await client.post(f"{BASE}/endpoints/{created['id']}/test")
    assert rotated.status_code == 200 and tested.status_code == 202
    new_secret = rotated.json()["secret"]
    assert new_secret != created["secret"] and rotated.json()["previous_secret_expires_at"]
    await drain(redis_url, queue_prefix)
    (request,) = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (created["secret"], new_secret):
        Webhook(secret).verify(request.body.decode(), request.headers)
    assert b'"type":"webhook.test"' in request.body


async def test_update_disable_enable_and_delete(
    app: FastAPI, app_db: Database, receiver: Receiver, redis: Redis, queue_prefix: str
) -> None:
    keys = await make_org_keys(app_db)
    created = await _create(app, keys.owner, receiver.url())
    path = f"{BASE}/endpoints/{created['id']}"
    async with as_key(app, keys.owner) as client:
        off = await client.patch(path, json={"enabled": False})
        none_sent = await client.post(f"{BASE}/events", json={"type": "a.b", "data": {}})
        blocked = await client.patch(path, json={"url": "http://192.168.0.1/"})
        on = await client.patch(path, json={"enabled": True, "description": "billing"})
        deleted = await client.delete(path)
        gone = await client.get(path)
    assert off.json()["enabled"] is False and off.json()["disabled_reason"]
    assert none_sent.json()["delivery_ids"] == []
    assert blocked.status_code == 422
    assert on.json()["enabled"] is True and on.json()["disabled_reason"] is None
    assert on.json()["description"] == "billing"
    assert deleted.status_code == 204 and gone.status_code == 404


async def test_another_organisation_gets_404_and_sees_nothing(
    app: FastAPI, app_db: Database, receiver: Receiver, redis: Redis, queue_prefix: str
) -> None:
    mine, theirs = await make_org_keys(app_db), await make_org_keys(app_db)
    created = await _create(app, mine.owner, receiver.url())
    async with as_key(app, mine.owner) as client:
        sent = (await client.post(f"{BASE}/events", json={"type": "a.b", "data": {}})).json()
    (delivery_id,) = sent["delivery_ids"]
    endpoint = f"{BASE}/endpoints/{created['id']}"
    async with as_key(app, theirs.owner) as client:
        answers = [
            await client.get(endpoint),
            await client.patch(endpoint, json={"description": "x"}),
            await client.delete(endpoint),
            await client.post(f"{endpoint}/rotate-secret"),
            await client.post(f"{endpoint}/test"),
            await client.get(f"{BASE}/deliveries/{delivery_id}"),
            await client.post(f"{BASE}/deliveries/{delivery_id}/retry"),
        ]
        listed = await client.get(f"{BASE}/endpoints")
        deliveries = await client.get(f"{BASE}/deliveries")
        fanned = await client.post(f"{BASE}/events", json={"type": "a.b", "data": {}})
    assert [a.status_code for a in answers] == [404] * len(answers)
    assert listed.json() == [] and deliveries.json()["deliveries"] == []
    assert fanned.json()["delivery_ids"] == []
    async with as_key(app, mine.member) as client:
        still = await client.get(endpoint)
    assert still.status_code == 200 and still.json()["description"] is None


async def test_the_sqlite_dev_path_end_to_end(
    allow_loopback: None,
    settings: Settings,
    receiver: Receiver,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
) -> None:
    from forgestack_api.main import create_app
    from forgestack_db.migrate import upgrade_async
    from forgestack_shared.settings import get_settings

    get_settings.cache_clear()
    await upgrade_async(get_settings().effective_database_url)
    app = create_app()
    async with app.router.lifespan_context(app):
        keys = await make_org_keys(app.state.resources.db)
        created = await _create(app, keys.owner, receiver.url(), event_types=["a.b"])
        async with as_key(app, keys.owner) as client:
            sent = (await client.post(f"{BASE}/events", json={"type": "a.b", "data": {}})).json()
        await drain(redis_url, queue_prefix)
        async with as_key(app, keys.member) as client:
            page = (await client.get(f"{BASE}/deliveries")).json()
        async with as_key(app, keys.owner) as client:
            assert (await client.delete(f"{BASE}/endpoints/{created['id']}")).status_code == 204
            after = (await client.get(f"{BASE}/deliveries")).json()
    assert after["deliveries"] == [], "an endpoint's log goes with it (cascade, SQLite too)"
    (request,) = receiver.requests
    Webhook(created["secret"]).verify(request.body.decode(), request.headers)
    assert [d["status"] for d in page["deliveries"]] == ["delivered"]
    assert [d["id"] for d in page["deliveries"]] == sent["delivery_ids"]


@pytest.mark.parametrize("url", ["http://[::1/hook", "http://" + "a" * 64 + ".example.com/"])
async def test_a_malformed_url_is_a_422_on_create_and_update(
    app: FastAPI, app_db: Database, receiver: Receiver, url: str
) -> None:
    keys = await make_org_keys(app_db)
    created = await _create(app, keys.owner, receiver.url())
    async with as_key(app, keys.owner) as client:
        refused = [
            await client.post(f"{BASE}/endpoints", json={"url": url}),
            await client.patch(f"{BASE}/endpoints/{created['id']}", json={"url": url}),
        ]
    for response in refused:
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "webhook_url_refused"


async def test_a_null_enabled_is_a_400_and_changes_nothing(
    app: FastAPI, app_db: Database, receiver: Receiver
) -> None:
    keys = await make_org_keys(app_db)
    created = await _create(app, keys.owner, receiver.url())
    async with as_key(app, keys.owner) as client:
        response = await client.patch(
            f"{BASE}/endpoints/{created['id']}", json={"enabled": None, "description": "x"}
        )
        after = (await client.get(f"{BASE}/endpoints/{created['id']}")).json()
    assert response.status_code == 400, response.text
    assert after["enabled"] is True and after["description"] is None
