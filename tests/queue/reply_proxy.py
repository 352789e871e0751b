"""A loopback TCP proxy in front of Redis that loses the reply to chosen commands: the request
reaches Redis and runs, then the connection drops before the answer arrives."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlparse


class ReplyDroppingProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.dropped = 0
        self._marker = b""
        self._drops_left = 0
        self._every = 1
        self._seen = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    def drop_replies_to(self, marker: bytes, times: int, every: int = 1) -> None:
        """`times` requests containing `marker` (a script's SHA) lose their reply: of those that
        follow, one in `every`."""
        self._marker, self._drops_left, self._every, self._seen = marker, times, every, 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self.target)
        doomed = asyncio.Event()
        """Set once a request on this connection must lose its reply."""
        for pipe in (
            self._requests(client_r, server_w, client_w, doomed),
            self._replies(server_r, client_w, server_w, doomed),
        ):
            task = asyncio.create_task(pipe)
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _requests(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client_w: asyncio.StreamWriter,
        doomed: asyncio.Event,
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if self._drops_left > 0 and self._marker and self._marker in data:
                    self._seen += 1
                    if self._seen % self._every == 0:
                        self._drops_left -= 1
                        doomed.set()
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        client_w.transport.abort()

    async def _replies(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        server_w: asyncio.StreamWriter,
        doomed: asyncio.Event,
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if doomed.is_set():
                    # The command ran on the server; its answer never reaches the client.
                    self.dropped += 1
                    break
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        server_w.transport.abort()


@contextlib.asynccontextmanager
async def reply_dropping_proxy(redis_url: str) -> AsyncIterator[tuple[ReplyDroppingProxy, str]]:
    """A proxy in front of `redis_url`'s server, and the URL (same database) that goes through it."""
    url = urlparse(redis_url)
    proxy = ReplyDroppingProxy(url.hostname or "127.0.0.1", url.port or 6379)
    port = await proxy.start()
    try:
        yield proxy, f"redis://127.0.0.1:{port}{url.path or '/0'}"
    finally:
        await proxy.stop()
