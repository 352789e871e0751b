"""Large bodies (bulk enqueues) are handled a few at a time per process, read before they wait,
so their combined working set stays bounded; small ones are never held back."""

import asyncio

from forgestack_api.large_bodies import LARGE_BODY_BYTES, LargeBodySlotsMiddleware
from starlette.types import Message, Receive, Scope, Send


class Recorder:
    """An app that reads the whole body, holds it for a moment and counts how many overlap."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _scope(length: int) -> Scope:
    headers = [(b"content-length", str(length).encode()), (b"content-type", b"application/json")]
    return {"type": "http", "method": "POST", "path": "/", "headers": headers}


def _chunks(body: bytes, size: int = 1000) -> Receive:
    parts = [body[i : i + size] for i in range(0, len(body), size)]

    async def receive() -> Message:
        await asyncio.sleep(0)
        part = parts.pop(0)
        return {"type": "http.request", "body": part, "more_body": bool(parts)}

    return receive


async def _ignore(_: Message) -> None:
    return None


async def test_large_bodies_are_handled_a_few_at_a_time_and_arrive_whole() -> None:
    inner = Recorder()
    app = LargeBodySlotsMiddleware(inner, slots=3)
    body = b"x" * (LARGE_BODY_BYTES * 2)
    await asyncio.gather(*(app(_scope(len(body)), _chunks(body), _ignore) for _ in range(12)))
    assert inner.most == 3
    assert inner.bodies == [body] * 12


async def test_small_bodies_are_not_held_back() -> None:
    inner = Recorder()
    app = LargeBodySlotsMiddleware(inner, slots=1)
    body = b"x" * 100
    await asyncio.gather(*(app(_scope(len(body)), _chunks(body), _ignore) for _ in range(8)))
    assert inner.most == 8


async def test_a_client_slow_to_send_its_body_holds_no_slot() -> None:
    inner = Recorder()
    app = LargeBodySlotsMiddleware(inner, slots=1)
    body = b"x" * LARGE_BODY_BYTES
    never = asyncio.Event()

    async def stalled() -> Message:
        await never.wait()
        return {"type": "http.disconnect"}

    slow = asyncio.ensure_future(app(_scope(len(body)), stalled, _ignore))
    await asyncio.wait_for(app(_scope(len(body)), _chunks(body), _ignore), timeout=2)
    assert inner.bodies == [body]
    slow.cancel()
