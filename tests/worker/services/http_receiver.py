"""A real HTTP/1.1 receiver on loopback for webhook tests, written on asyncio streams so it can
misbehave on purpose: answer any status, hang, trickle a body, or send 100 MB. It records every
connection and request, so a test can assert that nothing connected at all."""

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    mode: str = "normal"
    """normal | hang (never answers) | trickle (1 byte per 0.1 s) | huge (100 MB body)"""


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    """Loop time on arrival."""


@dataclass
class Receiver:
    port: int = 0
    replies: dict[str, list[Reply]] = field(default_factory=dict)
    """Per path, replies in order; the last one repeats. Unknown paths get 200."""
    requests: list[Received] = field(default_factory=list)
    connections: int = 0

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def reply(self, path: str, *replies: Reply) -> None:
        self.replies[path] = list(replies)

    def to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def _next_reply(self, path: str) -> Reply:
        queue = self.replies.get(path)
        if not queue:
            return Reply()
        return queue.pop(0) if len(queue) > 1 else queue[0]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                now = asyncio.get_running_loop().time()
                self.requests.append(Received(path, headers, body, now))
                await self._answer(writer, self._next_reply(path))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        if reply.mode == "hang":
            await asyncio.sleep(3600)
        size = 100 * 1024 * 1024 if reply.mode == "huge" else len(reply.body)
        head = f"HTTP/1.1 {reply.status} X\r\ncontent-length: {size}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
        writer.write((head + "\r\n").encode())
        if reply.mode == "trickle":
            for _ in range(size):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.1)
        elif reply.mode == "huge":
            chunk = b"x" * (1024 * 1024)
            for _ in range(100):
                writer.write(chunk)
                await writer.drain()
        else:
            writer.write(reply.body)
        await writer.drain()


@asynccontextmanager
async def receiving(
    receiver: Receiver | None = None, tls: ssl.SSLContext | None = None
) -> AsyncIterator[Receiver]:
    receiver = receiver or Receiver()
    server = await asyncio.start_server(receiver._serve, "127.0.0.1", 0, ssl=tls)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1)
