"""The webhook HTTP client against a real loopback receiver: the request goes to the checked
address (the name is never resolved), redirects are not followed, and neither a hanging, a
trickling nor a 100 MB answer holds the worker past the timeout or fills its memory."""

import asyncio
import ssl
import tracemalloc
from collections.abc import AsyncIterator

import httpx
import pytest
import trustme
from forgestack_shared.ssrf import CheckedTarget
from forgestack_worker.services.webhook_client import BODY_CAP, DeliveryTimeoutError, WebhookClient

from tests.worker.services.http_receiver import Receiver, Reply, receiving


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as receiver:
        yield receiver


def _target(
    receiver: Receiver, path: str, host: str = "hooks.unresolvable.invalid"
) -> CheckedTarget:
    return CheckedTarget("http", host, receiver.port, "127.0.0.1", path)


async def test_posts_to_the_checked_address_with_the_urls_host(receiver: Receiver) -> None:
    client = WebhookClient(timeout_s=5)
    try:
        response = await client.post(_target(receiver, "/in?a=1"), {"x-test": "1"}, b"{}")
    finally:
        await client.close()
    assert response.status == 200 and response.body == b"ok"
    (request,) = receiver.requests
    assert request.path == "/in?a=1"
    assert request.headers["host"] == f"hooks.unresolvable.invalid:{receiver.port}"
    assert request.body == b"{}"


async def test_the_http_clients_are_built_on_first_use(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building an httpx client loads the trust store: a worker's start-up pays for none, and a
    worker that only posts over plain HTTP never builds the HTTPS one."""
    built: list[object] = []
    init = httpx.AsyncClient.__init__

    def counted(self: httpx.AsyncClient, *args: object, **kwargs: object) -> None:
        built.append(kwargs.get("limits"))
        init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(httpx.AsyncClient, "__init__", counted)
    client = WebhookClient(timeout_s=5)
    try:
        assert built == []
        for _ in range(2):
            response = await client.post(_target(receiver, "/in"), {}, b"{}")
            assert response.status == 200
    finally:
        await client.close()
    assert len(built) == 1


async def test_redirects_are_not_followed(receiver: Receiver) -> None:
    receiver.reply("/moved", Reply(302, {"location": receiver.url("/elsewhere")}))
    client = WebhookClient(timeout_s=5)
    try:
        response = await client.post(_target(receiver, "/moved"), {}, b"{}")
    finally:
        await client.close()
    assert response.status == 302
    assert [r.path for r in receiver.requests] == ["/moved"]


@pytest.mark.parametrize("mode", ["hang", "trickle"])
async def test_a_slow_receiver_is_cut_at_the_timeout(receiver: Receiver, mode: str) -> None:
    receiver.reply("/slow", Reply(200, body=b"y" * 1000, mode=mode))
    client = WebhookClient(timeout_s=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(DeliveryTimeoutError):
            await client.post(_target(receiver, "/slow"), {}, b"{}")
    finally:
        await client.close()
    assert loop.time() - started < 1.5


async def test_a_100_mb_answer_is_capped_in_bounded_memory(receiver: Receiver) -> None:
    receiver.reply("/huge", Reply(200, mode="huge"))
    client = WebhookClient(timeout_s=10)
    tracemalloc.start()
    try:
        response = await client.post(_target(receiver, "/huge"), {}, b"{}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await client.close()
    assert response.truncated and len(response.body) == BODY_CAP
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while reading a 100 MB answer"


async def test_https_verifies_the_urls_name_on_the_checked_address() -> None:
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hooks.example.test").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    async with receiving(tls=server_tls) as receiver:
        client = WebhookClient(timeout_s=5, verify=client_tls)
        try:
            good = CheckedTarget("https", "hooks.example.test", receiver.port, "127.0.0.1", "/in")
            response = await client.post(good, {}, b"{}")
            wrong = CheckedTarget("https", "other.example.test", receiver.port, "127.0.0.1", "/in")
            with pytest.raises(httpx.ConnectError, match="certificate"):
                await client.post(wrong, {}, b"{}")
        finally:
            await client.close()
    assert response.status == 200
    assert [r.headers["host"] for r in receiver.requests] == [f"hooks.example.test:{receiver.port}"]
