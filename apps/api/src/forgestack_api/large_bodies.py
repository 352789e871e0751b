"""At most LARGE_BODY_SLOTS requests with a large body are handled at once per process; the others
wait, their body already read, for a slot.

A bulk enqueue's body becomes a hundred models, packed script arguments and replies: about 300 KiB
while it is handled. Thirty-two handled at once (a client's 32 connections) peak at about 10 MiB,
and the heap they leave fragmented is kept by the process after the burst. The process has the
CPU for only a few at a time anyway, so handling them a few at a time costs no throughput and
bounds that peak. The body is read before a slot is taken: a client slow to send its body holds
no slot, only its own bytes (within the body cap)."""

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LARGE_BODY_BYTES = 4096
"""A declared body at least this long takes a slot: bulk enqueues, not single ones."""

LARGE_BODY_SLOTS = 4


class LargeBodySlotsMiddleware:
    def __init__(self, app: ASGIApp, *, slots: int = LARGE_BODY_SLOTS) -> None:
        self.app = app
        self.slots = asyncio.Semaphore(slots)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _declared_length(scope) < LARGE_BODY_BYTES:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        async with self.slots:
            await self.app(scope, replay, send)


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0
