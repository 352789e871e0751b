"""The webhook-delivery job through the real worker, PostgreSQL (as the application login) and a
real loopback receiver: signatures the reference verifier accepts, the status matrix, measured
retries, Retry-After, 410, the SSRF guard at delivery time, rotation, and no secret in the job
record or the logs."""

from collections.abc import AsyncIterator

import pytest
from forgestack_db.database import Database
from forgestack_db.models import AuditLog, WebhookEndpoint
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_shared.settings import Settings, get_settings
from forgestack_shared.ssrf import check_url
from forgestack_shared.webhook_signing import new_secret
from redis.asyncio import Redis
from sqlmodel import select
from standardwebhooks.webhooks import Webhook

from tests.db.helpers import make_org
from tests.fixtures_db import PgTestDatabase
from tests.worker.handlers.webhook_fixtures import (
    days_ago,
    drain,
    enqueue,
    make_delivery,
    make_endpoint,
    reload,
    sequence_resolver,
)
from tests.worker.services.http_receiver import Receiver, Reply, receiving


@pytest.fixture
def wh_settings(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, pg_database: PgTestDatabase
) -> Settings:
    monkeypatch.setenv("DATABASE_URL", pg_database.app_url)
    monkeypatch.setenv("WEBHOOK_ALLOWED_CIDRS", "127.0.0.0/8")
    monkeypatch.setenv("WEBHOOK_TIMEOUT_S", "2")
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as receiver:
        yield receiver


@pytest.mark.parametrize("status", [200, 204])
async def test_a_2xx_is_delivered_signed_as_the_reference_verifier_expects(
    wh_settings: Settings,
    app_db: Database,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
    receiver: Receiver,
    capfd: pytest.CaptureFixture[str],
    status: int,
) -> None:
    receiver.reply("/hook", Reply(status, body=b"" if status == 204 else b"thanks"))
    endpoint = await make_endpoint(app_db, await make_org(app_db), receiver.url("/hook"))
    delivery = await make_delivery(app_db, endpoint)
    added = await enqueue(redis, queue_prefix, delivery, [1])
    await drain(redis_url, queue_prefix)

    (request,) = receiver.requests
    Webhook(endpoint.secret).verify(request.body.decode(), request.headers)
    assert request.body == delivery.payload.encode()
    assert request.headers["webhook-id"] == delivery.event_id
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("ForgeStack-Webhooks/")
    row = await reload(app_db, delivery)
    assert (row.status, row.attempt, row.response_status) == ("delivered", 1, status)
    assert "webhook-signature" not in row.request_headers
    assert row.request_headers["webhook-id"] == delivery.event_id
    job = await Queue(redis, "webhook-delivery", prefix=queue_prefix).get_job(added.id)
    assert job is not None and job.state is JobState.COMPLETED
    assert set(job.data) == {"org_id", "delivery_id"}
    assert endpoint.secret not in repr(job)
    logs = "".join(capfd.readouterr())  # the worker's loguru sink, at DEBUG (httpx included)
    assert f"webhook {delivery.id} to endpoint {endpoint.id}: HTTP {status}" in logs
    assert endpoint.secret not in logs
    assert request.headers["webhook-signature"] not in logs


@pytest.mark.parametrize("status", [301, 302])
async def test_a_redirect_is_not_followed_and_counts_as_failure(
    wh_settings: Settings,
    app_db: Database,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
    receiver: Receiver,
    status: int,
) -> None:
    receiver.reply("/hook", Reply(status, {"location": receiver.url("/elsewhere")}))
    endpoint = await make_endpoint(app_db, await make_org(app_db), receiver.url("/hook"))
    delivery = await make_delivery(app_db, endpoint)
    added = await enqueue(redis, queue_prefix, delivery, [0])
    await drain(redis_url, queue_prefix)
    assert [r.path for r in receiver.requests] == ["/hook", "/hook"]
    row = await reload(app_db, delivery)
    assert row.status == "failed" and row.attempt == 2
    assert "redirects are not followed" in row.error
    job = await Queue(redis, "webhook-delivery", prefix=queue_prefix).get_job(added.id)
    assert job is not None and job.state is JobState.FAILED
    assert (await reload(app_db, endpoint)).failing_since is not None


async def test_410_disables_the_endpoint_with_an_audit_event(
    wh_settings: Settings,
    app_db: Database,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
    receiver: Receiver,
) -> None:
    receiver.reply("/hook", Reply(410))
    endpoint = await make_endpoint(app_db, await make_org(app_db), receiver.url("/hook"))
    delivery = await make_delivery(app_db, endpoint)
    await enqueue(redis, queue_prefix, delivery, [0, 0, 0])
    await drain(redis_url, queue_prefix)
    assert len(receiver.requests) == 1, "410 is final: no retry"
    endpoint_now: WebhookEndpoint = await reload(app_db, endpoint)
    assert not endpoint_now.enabled and "410" in (endpoint_now.disabled_reason or "")
    assert (await reload(app_db, delivery)).status == "failed"
    async with app_db.tenant_context(endpoint.org_id) as session:
        audit = (
            await session.exec(select(AuditLog).where(AuditLog.resource_id == str(endpoint.id)))
        ).one()
    assert (audit.action, audit.actor_type) == ("webhook_endpoint.disabled", "system")


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_delays_the_next_attempt_at_least_that_long(
    wh_settings: Settings,
    app_db: Database,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
    receiver: Receiver,
    status: int,
) -> None:
    receiver.reply("/hook", Reply(status, {"retry-after": "2"}), Reply(200))
    endpoint = await make_endpoint(app_db, await make_org(app_db), receiver.url("/hook"))
    delivery = await make_delivery(app_db, endpoint)
    await enqueue(redis, queue_prefix, delivery, [0, 0])
    await drain(redis_url, queue_prefix)
    first, second = receiver.requests
    assert second.at - first.at >= 1.99, "the schedule said 0 s; Retry-After said 2 s"
    assert (await reload(app_db, delivery)).status == "delivered"


async def test_500_is_retried_on_the_schedule_until_it_succeeds(
    wh_settings: Settings,
    app_db: Database,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
    receiver: Receiver,
) -> None:
    receiver.reply("/hook", Reply(500, body=b"boom"), Reply(500, body=b"boom"), Reply(200))
    endpoint = await make_endpoint(
        app_db, await make_org(app_db), receiver.url("/hook"), retry_schedule_s=[1, 2]
    )
    delivery = await make_delivery(app_db, endpoint)
    await enqueue(redis, queue_prefix, delivery, [1, 2])
    await drain(redis_url, queue_prefix)
    times = [r.at for r in receiver.requests]
    assert len(times) == 3
    assert 0.95 <= times[1] - times[0] <= 1.9
    assert 1.95 <= times[2] - times[1] <= 2.9
    row = await reload(app_db, delivery)
    assert (row.status, row.attempt) == ("delivered", 3)
    assert (await reload(app_db, endpoint)).failing_since is None, "a success resets the window"


async def test_a_failing_delivery_records_the_truncated_answer_and_the_next_attempt(
    wh_settings: Settings,
    app_db: Database,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
    receiver: Receiver,
) -> None:
    receiver.reply("/hook", Reply(500, body=b"e" * 100_000))
    endpoint = await make_endpoint(app_db, await make_org(app_db), receiver.url("/hook"))
    delivery = await make_delivery(app_db, endpoint)
    await enqueue(redis, queue_prefix, delivery, [3600])
    await drain(redis_url, queue_prefix)
    row = await reload(app_db, delivery)
    assert (row.status, row.response_status, row.attempt) == ("pending", 500, 1)
    assert row.response_body.endswith("[truncated]") and len(row.response_body) < 5000
    assert row.next_attempt_at is not None and row.error == "HTTP 500"


async def test_the_guard_refuses_at_delivery_before_any_connection(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    pg_database: PgTestDatabase,
    app_db: Database,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
    receiver: Receiver,
) -> None:
    monkeypatch.setenv("DATABASE_URL", pg_database.app_url)
    get_settings.cache_clear()  # no allowlist: loopback is refused
    endpoint = await make_endpoint(app_db, await make_org(app_db), receiver.url("/hook"))
    delivery = await make_delivery(app_db, endpoint)
    added = await enqueue(redis, queue_prefix, delivery, [0, 0])
    await drain(redis_url, queue_prefix)
    assert receiver.connections == 0
    row = await reload(app_db, delivery)
    assert row.status == "failed" and "loopback" in row.error
    assert (await reload(app_db, endpoint)).failing_since is not None, "counts as a failure"
    job = await Queue(redis, "webhook-delivery", prefix=queue_prefix).get_job(added.id)
    assert job is not None and job.state is JobState.FAILED and job.attempts_made == 1


async def test_dns_rebinding_is_refused_at_delivery(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    pg_database: PgTestDatabase,
    app_db: Database,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
    receiver: Receiver,
) -> None:
    monkeypatch.setenv("DATABASE_URL", pg_database.app_url)
    get_settings.cache_clear()
    resolver, asked = sequence_resolver(["93.184.216.34"], ["127.0.0.1"])
    url = receiver.url("/hook", host="rebind.example.com")
    await check_url(url, (), resolver)  # what endpoint creation saw: a public address
    endpoint = await make_endpoint(app_db, await make_org(app_db), url)
    delivery = await make_delivery(app_db, endpoint)
    await enqueue(redis, queue_prefix, delivery, [0])
    await drain(redis_url, queue_prefix, resolver)
    assert asked == ["rebind.example.com", "rebind.example.com"]
    assert receiver.connections == 0
    assert "127.0.0.1" in (await reload(app_db, delivery)).error


async def test_the_connection_goes_to_the_checked_address_without_a_second_lookup(
    wh_settings: Settings,
    app_db: Database,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
    receiver: Receiver,
) -> None:
    # The second answer would be refused; the name itself resolves nowhere outside this resolver.
    resolver, asked = sequence_resolver(["127.0.0.1"], ["10.66.66.66"])
    url = receiver.url("/hook", host="pinned.invalid")
    endpoint = await make_endpoint(app_db, await make_org(app_db), url)
    delivery = await make_delivery(app_db, endpoint)
    await enqueue(redis, queue_prefix, delivery, [0])
    await drain(redis_url, queue_prefix, resolver)
    assert asked == ["pinned.invalid"]
    (request,) = receiver.requests
    assert request.headers["host"] == f"pinned.invalid:{receiver.port}"
    assert (await reload(app_db, delivery)).status == "delivered"


async def test_during_rotation_both_secrets_sign_and_both_verify(
    wh_settings: Settings,
    app_db: Database,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
    receiver: Receiver,
) -> None:
    old = new_secret()
    endpoint = await make_endpoint(
        app_db,
        await make_org(app_db),
        receiver.url("/hook"),
        previous_secret=old,
        previous_secret_expires_at=days_ago(-1),
    )
    delivery = await make_delivery(app_db, endpoint)
    await enqueue(redis, queue_prefix, delivery, [0])
    await drain(redis_url, queue_prefix)
    (request,) = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (endpoint.secret, old):
        Webhook(secret).verify(request.body.decode(), request.headers)


async def test_a_deleted_endpoint_fails_its_pending_delivery_visibly(
    wh_settings: Settings,
    app_db: Database,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
    receiver: Receiver,
) -> None:
    endpoint = await make_endpoint(app_db, await make_org(app_db), receiver.url("/hook"))
    delivery = await make_delivery(app_db, endpoint)
    added = await enqueue(redis, queue_prefix, delivery, [0])
    async with app_db.tenant_context(endpoint.org_id) as session:
        await session.delete(await session.get(WebhookEndpoint, endpoint.id))
    await drain(redis_url, queue_prefix)
    job = await Queue(redis, "webhook-delivery", prefix=queue_prefix).get_job(added.id)
    assert job is not None and job.state is JobState.FAILED
    assert "no longer exists" in (job.failed_reason or "")
    assert receiver.connections == 0


async def test_a_delivery_for_a_disabled_endpoint_fails_visibly_without_sending(
    wh_settings: Settings,
    app_db: Database,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
    receiver: Receiver,
) -> None:
    endpoint = await make_endpoint(
        app_db, await make_org(app_db), receiver.url("/hook"), enabled=False, disabled_reason="x"
    )
    delivery = await make_delivery(app_db, endpoint)
    added = await enqueue(redis, queue_prefix, delivery, [0, 0])
    await drain(redis_url, queue_prefix)
    assert receiver.connections == 0
    row = await reload(app_db, delivery)
    assert row.status == "failed" and row.error == "endpoint disabled: x"
    job = await Queue(redis, "webhook-delivery", prefix=queue_prefix).get_job(added.id)
    assert job is not None and job.state is JobState.FAILED and job.attempts_made == 1
