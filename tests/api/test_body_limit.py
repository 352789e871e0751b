"""The request body cap: refused on the declared length before anything is read, and while a
chunked body streams in, so the API never holds more than the cap plus one chunk."""

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from forgestack_api.body_limit import BodyLimitMiddleware
from forgestack_api.main import create_app
from forgestack_queue.producer import DEFAULT_MAX_PAYLOAD_BYTES
from forgestack_shared.settings import Settings, get_settings
from starlette.types import Message, Receive, Scope, Send

from tests.api.conftest import operator_client

JOBS = "/api/v1/queues/my-new-job/jobs"
MIB = 1_048_576
CHUNK = 64 * 1024


class CountingBody:
    """A request body produced chunk by chunk, remembering how much the server pulled."""

    def __init__(self, total: int, head: bytes = b"") -> None:
        self.total = total
        self.head = head
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.head:
            self.sent += len(self.head)
            yield self.head
        while self.sent < self.total:
            chunk = b" " * min(CHUNK, self.total - self.sent)
            self.sent += len(chunk)
            yield chunk


async def _keys(redis: aioredis.Redis, prefix: str) -> list[bytes]:
    return [key async for key in redis.scan_iter(match=f"{prefix}:*")]


def _assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["code"] == "payload_too_large"
    assert str(MIB) in body["detail"]


async def test_default_cap_is_one_mib(app: FastAPI) -> None:
    (limit,) = [m for m in app.user_middleware if m.cls is BodyLimitMiddleware]
    assert limit.kwargs == {"max_bytes": MIB}


async def test_a_body_declared_too_large_is_refused_before_it_is_read(
    client: httpx.AsyncClient, redis: aioredis.Redis, queue_prefix: str
) -> None:
    body = CountingBody(3 * MIB // 2)
    response = await client.post(JOBS, content=body, headers={"Content-Length": str(body.total)})
    _assert_413(response)
    assert body.sent == 0
    assert await _keys(redis, queue_prefix) == []


async def test_a_plain_large_json_body_is_413(
    client: httpx.AsyncClient, redis: aioredis.Redis, queue_prefix: str
) -> None:
    payload = {"data": {"user_id": "u1", "action": "a", "payload": {"x": "y" * (3 * MIB // 2)}}}
    _assert_413(await client.post(JOBS, json=payload))
    assert await _keys(redis, queue_prefix) == []


async def test_a_chunked_body_is_cut_off_once_it_passes_the_cap(
    client: httpx.AsyncClient, redis: aioredis.Redis, queue_prefix: str
) -> None:
    """100 MB announced by nothing but its chunks: the server stops pulling just past the cap."""
    head = b'{"data": {"user_id": "u1", "action": "a", "payload": {"x": "'
    body = CountingBody(100 * MIB, head=head)
    response = await client.post(JOBS, content=body)
    assert "content-length" not in response.request.headers
    _assert_413(response)
    assert body.sent <= MIB + CHUNK
    assert await _keys(redis, queue_prefix) == []


async def test_a_body_under_the_cap_still_streams_through(client: httpx.AsyncClient) -> None:
    encoded = json.dumps({"data": {"user_id": "u1", "action": "a"}}).encode()
    body = CountingBody(len(encoded), head=encoded)
    response = await client.post(JOBS, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 202, response.text


async def test_the_cap_is_a_setting(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, redis: aioredis.Redis
) -> None:
    monkeypatch.setenv("API_MAX_BODY_BYTES", "100")
    get_settings.cache_clear()
    app = create_app()
    async with app.router.lifespan_context(app), operator_client(app) as client:
        big = {"data": {"user_id": "u1", "action": "a", "payload": {"x": "y" * 100}}}
        response = await client.post(JOBS, json=big)
        assert response.status_code == 413
        assert "100 bytes" in response.json()["detail"]
        small = await client.post(JOBS, json={"data": {"user_id": "u", "action": "a"}})
        assert small.status_code == 202


async def test_a_job_over_the_job_layers_payload_cap_is_413_and_writes_nothing(
    client: httpx.AsyncClient, redis: aioredis.Redis, queue_prefix: str
) -> None:
    """Under the request cap, over the layer's: the layer refuses it before Redis sees it."""
    job = {"data": {"user_id": "u1", "action": "a", "payload": {"x": "y" * (600 * 1024)}}}
    for url, body in ((JOBS, job), (f"{JOBS}:bulk", {"jobs": [{"data": job["data"]}]})):
        response = await client.post(url, json=body)
        assert response.status_code == 413, response.text
        assert response.json()["code"] == "payload_too_large"
        assert response.json()["limit"] == DEFAULT_MAX_PAYLOAD_BYTES
    assert await _keys(redis, queue_prefix) == []


async def test_a_chunked_body_declaring_a_small_length_is_still_counted() -> None:
    """Content-Length within the cap lets a body through uncounted only without Transfer-Encoding,
    which would frame the body instead (a smuggling pattern)."""
    received: list[int] = []

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        received.append(len(message.get("body", b"")))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limited = BodyLimitMiddleware(endpoint, max_bytes=10)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"x" * 11, "more_body": False}

    headers = [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")]
    scope: Scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    await limited(scope, receive, send)
    assert received == [] and sent[0]["status"] == 413
