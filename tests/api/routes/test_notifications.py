"""POST /api/v1/notifications/email: validation (header injection, addresses, templates), the
tenant route's auth, idempotency keys, and one email from HTTP to a real SMTP server."""

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from forgestack_api.auth import Principal, Role
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker
from forgestack_shared.queues import QueueName
from forgestack_shared.settings import get_settings
from forgestack_worker.registry import HANDLERS
from forgestack_worker.settings import on_shutdown, on_startup
from redis.asyncio import Redis

from tests.worker.services.smtp_server import ScriptedSmtpServer

URL = "/api/v1/notifications/email"
VALID: dict[str, Any] = {
    "to": "Jane Doe <jane@example.com>",
    "subject": "Welcome aboard",
    "template": "welcome",
    "variables": {"name": "Jane", "action_url": "https://app.example.com/start"},
}


@pytest.fixture
def queue(redis: Redis, queue_prefix: str) -> Queue:
    return Queue(redis, QueueName.NOTIFICATION_EMAIL, prefix=queue_prefix)


@pytest.fixture
def member_org(app: FastAPI) -> uuid.UUID:
    """A non-admin tenant key, `member-key`, plugged into the authenticator chain."""
    org = uuid.uuid4()

    async def member_keys(token: str) -> Principal | None:
        if token == "member-key":
            return Principal(role=Role.MEMBER, org_id=org, key_id="k1", name="app")
        return None

    app.state.resources.authenticators.append(member_keys)
    return org


async def assert_nothing_queued(queue: Queue) -> None:
    assert set((await queue.counts()).values()) == {0}


async def test_queues_the_email_and_answers_202_with_the_job_id(
    client: httpx.AsyncClient, queue: Queue
) -> None:
    response = await client.post(URL, json={**VALID, "reply_to": "support@example.com"})

    assert response.status_code == 202
    body = response.json()
    assert body["queue"] == "notification-email"
    assert body["state"] == "waiting"
    assert body["created"] is True
    assert re.fullmatch(r"<[0-9a-f]{32}@forgestack>", body["message_id"])
    job = await queue.get_job(body["id"])
    assert job is not None
    assert job.data == {
        **VALID,
        "reply_to": "support@example.com",
        "message_id": body["message_id"],
    }
    assert job.options.attempts == 5
    assert job.options.remove_on_fail is not True


async def test_any_valid_key_may_call_it_not_only_operators(
    anon: httpx.AsyncClient, member_org: uuid.UUID, queue: Queue
) -> None:
    response = await anon.post(URL, json=VALID, headers={"Authorization": "Bearer member-key"})
    assert response.status_code == 202


async def test_without_a_key_it_is_401_and_nothing_is_queued(
    anon: httpx.AsyncClient, queue: Queue
) -> None:
    assert (await anon.post(URL, json=VALID)).status_code == 401
    await assert_nothing_queued(queue)


INJECTIONS = [
    ("subject", "Hello\r\nBcc: victim@example.com"),
    ("subject", "Hello\nBcc: victim@example.com"),
    ("subject", "Hello\rBcc: victim@example.com"),
    ("subject", "=?utf-8?q?Hello=0D=0ABcc:_victim@example.com?="),
    ("to", "jane@example.com\r\nBcc: victim@example.com"),
    ("to", "Jane\r\nBcc: victim@example.com <jane@example.com>"),
    ("to", "=?utf-8?q?Jane=0D=0ABcc:_victim@example.com?= <jane@example.com>"),
    ("reply_to", "x@example.com\nBcc: victim@example.com"),
]


@pytest.mark.parametrize(("field", "value"), INJECTIONS)
async def test_line_breaks_that_would_inject_headers_are_422(
    client: httpx.AsyncClient, queue: Queue, field: str, value: str
) -> None:
    response = await client.post(URL, json={**VALID, field: value})
    assert response.status_code == 422
    assert [err["loc"] for err in response.json()["detail"]] == [["body", field]]
    await assert_nothing_queued(queue)


@pytest.mark.parametrize(
    "address",
    [
        "not-an-address",
        "jane@",
        "jane@localhost",
        "jane@example",
        "jane@[127.0.0.1]",
        "jane@example.com, joe@example.com",
        "team: jane@example.com;",
        "Jane <jane@example.com",
        "",
    ],
)
async def test_invalid_recipients_are_422(
    client: httpx.AsyncClient, queue: Queue, address: str
) -> None:
    response = await client.post(URL, json={**VALID, "to": address})
    assert response.status_code == 422
    await assert_nothing_queued(queue)


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"template": "password-reset"}, ["body", "template"]),
        ({"variables": {"name": 5}}, ["body", "variables", "name"]),
        ({"variables": {"bad-name": "x"}}, ["body", "variables", "bad-name", "[key]"]),
        ({"message_id": "<mine@example.com>"}, ["body", "message_id"]),
        ({"subject": ""}, ["body", "subject"]),
    ],
)
async def test_other_invalid_fields_are_422(
    client: httpx.AsyncClient, queue: Queue, change: dict[str, Any], loc: list[str]
) -> None:
    response = await client.post(URL, json={**VALID, **change})
    assert response.status_code == 422
    assert [err["loc"] for err in response.json()["detail"]] == [loc]
    await assert_nothing_queued(queue)


@pytest.mark.parametrize(
    ("variables", "reason"),
    [
        ({"name": "Jane"}, "needs the variable 'action_url'"),
        ({"name": "Jane", "action_url": "javascript:alert(1)"}, "not an absolute http(s) URL"),
        ({"name": "Jane", "action_url": "//evil.example.com"}, "not an absolute http(s) URL"),
    ],
)
async def test_variables_the_template_would_refuse_are_422(
    client: httpx.AsyncClient, queue: Queue, variables: dict[str, str], reason: str
) -> None:
    response = await client.post(URL, json={**VALID, "variables": variables})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "variables"]
    assert reason in error["msg"]
    await assert_nothing_queued(queue)


async def test_the_generic_enqueue_route_checks_the_template_too(
    client: httpx.AsyncClient, queue: Queue
) -> None:
    data = {**VALID, "variables": {"name": "Jane", "action_url": "javascript:alert(1)"}}
    response = await client.post("/api/v1/queues/notification-email/jobs", json={"data": data})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["data", "variables"]
    await assert_nothing_queued(queue)


async def test_a_repeated_idempotency_key_returns_the_first_job(
    client: httpx.AsyncClient, queue: Queue
) -> None:
    first = await client.post(URL, json={**VALID, "idempotency_key": "signup-42"})
    again = await client.post(URL, json={**VALID, "idempotency_key": "signup-42"})
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["message_id"] == first.json()["message_id"]
    assert again.json()["created"] is False
    assert (await queue.counts())[JobState.WAITING] == 1


async def test_idempotency_keys_are_scoped_to_the_callers_organisation(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, member_org: uuid.UUID, queue: Queue
) -> None:
    body = {**VALID, "idempotency_key": "signup-42"}
    operator = await client.post(URL, json=body)
    member = await anon.post(URL, json=body, headers={"Authorization": "Bearer member-key"})
    assert (operator.status_code, member.status_code) == (202, 202)
    # Each organisation's ids are its own: the same key names two jobs, neither hiding the other.
    assert operator.json()["created"] is member.json()["created"] is True
    assert str(member_org) not in member.json()["id"]
    assert (await queue.counts())[JobState.WAITING] == 2


@pytest.fixture
async def smtp_server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ScriptedSmtpServer]:
    async with ScriptedSmtpServer() as server:
        monkeypatch.setenv("SMTP_HOST", server.host)
        monkeypatch.setenv("SMTP_PORT", str(server.port))
        get_settings.cache_clear()
        yield server


async def test_an_accepted_request_arrives_at_the_smtp_server(
    client: httpx.AsyncClient, smtp_server: ScriptedSmtpServer, redis_url: str, queue_prefix: str
) -> None:
    accepted = (await client.post(URL, json=VALID)).json()

    await run_burst_worker(
        redis_url, HANDLERS, prefix=queue_prefix, on_startup=on_startup, on_shutdown=on_shutdown
    )

    job = (await client.get(f"/api/v1/jobs/{accepted['id']}")).json()
    assert job["state"] == "completed"
    assert job["result"]["accepted"] == ["jane@example.com"]
    (caught,) = smtp_server.messages
    assert caught.message["Message-ID"] == accepted["message_id"]
    assert caught.message["To"] == "Jane Doe <jane@example.com>"
