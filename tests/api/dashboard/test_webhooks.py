"""The dashboard's webhook pages on PostgreSQL: an organisation's endpoints and delivery log
(filtered by endpoint and status, paged), a delivery's request and answer with secret-named
values masked, a confirmed retry for owners; no signing secret on any page, and another
organisation's endpoints and deliveries nowhere (its delivery a 404 like a missing one)."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from forgestack_db.database import Database
from forgestack_db.models import WebhookDelivery, WebhookEndpoint
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from redis.asyncio import Redis

from tests.api.dashboard.helpers import csrf_of, sign_in
from tests.fixtures_db import OrgKeys, make_org_keys
from tests.worker.handlers.webhook_fixtures import make_delivery, make_endpoint, reload

A_URL = "https://hooks.a.example/in"
B_URL = "https://hooks.b.example/private-receiver"


@dataclass
class Hooks:
    a: OrgKeys
    b: OrgKeys
    a_endpoint: WebhookEndpoint
    a_failed: WebhookDelivery
    a_pending: WebhookDelivery
    b_endpoint: WebhookEndpoint
    b_delivery: WebhookDelivery


async def _fail(db: Database, delivery: WebhookDelivery) -> None:
    async with db.tenant_context(delivery.org_id) as session:
        delivery.status = "failed"
        delivery.attempt = 3
        delivery.response_status = 500
        delivery.response_body = "upstream down"
        delivery.error = "HTTP 500"
        delivery.failed_at = datetime.now(UTC)
        delivery.request_headers = {"authorization": "Bearer hdr-secret", "webhook-id": "x"}
        await session.merge(delivery)


@pytest.fixture
async def hooks(app_db: Database) -> Hooks:
    a, b = await make_org_keys(app_db), await make_org_keys(app_db)
    a_endpoint = await make_endpoint(app_db, a.org_id, A_URL, event_types=["invoice.paid"])
    a_failed = await make_delivery(app_db, a_endpoint)
    await _fail(app_db, a_failed)
    a_pending = await make_delivery(app_db, a_endpoint, "user.created")
    b_endpoint = await make_endpoint(app_db, b.org_id, B_URL, description="b's own")
    b_delivery = await make_delivery(app_db, b_endpoint)
    return Hooks(a, b, a_endpoint, a_failed, a_pending, b_endpoint, b_delivery)


@pytest.fixture
async def session(pg_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=pg_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


async def test_endpoints_and_their_delivery_log(hooks: Hooks, session: httpx.AsyncClient) -> None:
    await sign_in(session, hooks.a.member)
    listed = await session.get("/dashboard/webhooks")
    assert listed.status_code == 200
    assert A_URL in listed.text and "invoice.paid" in listed.text
    log = await session.get(
        "/dashboard/webhooks/deliveries", params={"endpoint": hooks.a_endpoint.id}
    )
    assert log.status_code == 200
    assert str(hooks.a_failed.id) in log.text and str(hooks.a_pending.id) in log.text
    # Newest first.
    assert log.text.index(str(hooks.a_pending.id)) < log.text.index(str(hooks.a_failed.id))
    failed = await session.get("/dashboard/webhooks/deliveries", params={"status": "failed"})
    assert str(hooks.a_failed.id) in failed.text and str(hooks.a_pending.id) not in failed.text

    one = await session.get(f"/dashboard/webhooks/deliveries/{hooks.a_failed.id}")
    assert one.status_code == 200
    for shown in ("upstream down", "HTTP 500", "invoice.paid", hooks.a_failed.event_id):
        assert shown in one.text
    assert "hdr-secret" not in one.text and "(redacted)" in one.text
    assert 'data-action="retry-delivery"' not in one.text  # a member reads only
    for page in (listed, log, failed, one):
        assert hooks.a_endpoint.secret not in page.text


async def test_a_page_of_deliveries_links_to_the_next(
    hooks: Hooks, session: httpx.AsyncClient, app_db: Database
) -> None:
    for _ in range(25):
        await make_delivery(app_db, hooks.a_endpoint)
    await sign_in(session, hooks.a.member)
    first = await session.get("/dashboard/webhooks/deliveries")
    assert first.text.count("data-delivery=") == 25
    older = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = await session.get(older.replace("&amp;", "&"))
    assert second.status_code == 200 and second.text.count("data-delivery=") == 2
    assert str(hooks.a_failed.id) in second.text
    bad = await session.get("/dashboard/webhooks/deliveries", params={"cursor": "nope"})
    assert bad.status_code == 400


async def test_an_owner_sends_a_failed_delivery_again(
    hooks: Hooks, session: httpx.AsyncClient, app_db: Database, redis: Redis, queue_prefix: str
) -> None:
    await sign_in(session, hooks.a.owner)
    path = f"/dashboard/webhooks/deliveries/{hooks.a_failed.id}"
    assert 'data-action="retry-delivery"' in (await session.get(path)).text
    csrf = await csrf_of(session, path)
    asked = await session.post(f"{path}/retry", data={"csrf": csrf})
    assert asked.status_code == 200 and "Send this delivery again" in asked.text  # confirm first
    assert (await reload(app_db, hooks.a_failed)).status == "failed"

    done = await session.post(f"{path}/retry", data={"csrf": csrf, "confirmed": "yes"})
    assert done.status_code == 303 and done.headers["location"].startswith(path)
    assert (await reload(app_db, hooks.a_failed)).status == "pending"
    queue = Queue(redis, "webhook-delivery", prefix=queue_prefix)
    waiting = (await queue.get_jobs(JobState.WAITING)).jobs
    assert [j.data["delivery_id"] for j in waiting] == [str(hooks.a_failed.id)]

    again = await session.post(f"{path}/retry", data={"csrf": csrf, "confirmed": "yes"})
    assert again.status_code == 409 and "still pending" in again.text
    forged = await session.post(f"{path}/retry", data={"csrf": "0" * 64, "confirmed": "yes"})
    assert forged.status_code == 403

    await sign_in(session, hooks.a.member)
    member_csrf = await csrf_of(session, path)
    refused = await session.post(f"{path}/retry", data={"csrf": member_csrf, "confirmed": "yes"})
    assert refused.status_code == 403


async def test_another_organisation_sees_none_of_it(
    hooks: Hooks, session: httpx.AsyncClient
) -> None:
    await sign_in(session, hooks.a.owner)
    pages = [
        await session.get("/dashboard/webhooks"),
        await session.get("/dashboard/webhooks/deliveries"),
        await session.get("/dashboard/webhooks/deliveries", params={"status": "pending"}),
    ]
    for page in pages:
        assert page.status_code == 200
        for marker in (B_URL, "b's own", str(hooks.b_delivery.id), hooks.b_endpoint.secret):
            assert marker not in page.text
    theirs = await session.get(f"/dashboard/webhooks/deliveries/{hooks.b_delivery.id}")
    missing_id = uuid.uuid4()
    missing = await session.get(f"/dashboard/webhooks/deliveries/{missing_id}")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.text.replace(str(hooks.b_delivery.id), "ID") == missing.text.replace(
        str(missing_id), "ID"
    )
    by_endpoint = await session.get(
        "/dashboard/webhooks/deliveries", params={"endpoint": hooks.b_endpoint.id}
    )
    assert by_endpoint.status_code == 404 and B_URL not in by_endpoint.text
    csrf = await csrf_of(session)
    retried = await session.post(
        f"/dashboard/webhooks/deliveries/{hooks.b_delivery.id}/retry",
        data={"csrf": csrf, "confirmed": "yes"},
    )
    assert retried.status_code == 404


async def test_the_operator_is_told_endpoints_belong_to_organisations(
    hooks: Hooks, session: httpx.AsyncClient
) -> None:
    await sign_in(session, "test-admin-key")
    page = await session.get("/dashboard/webhooks")
    assert page.status_code == 200 and "sign in with an" in page.text
    assert A_URL not in page.text and B_URL not in page.text
    log = await session.get("/dashboard/webhooks/deliveries")
    assert log.status_code == 403
