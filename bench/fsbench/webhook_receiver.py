"""The bench's webhook receiver: its own OS process, HTTP/1.1 keep-alive on loopback, answering
every POST 200 at once and counting deliveries with the time of the first and the last."""

import asyncio
import multiprocessing as mp
import time
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from typing import Any


@dataclass
class Counters:
    count: "Synchronized[int]"
    first: "Synchronized[float]"
    last: "Synchronized[float]"

    @classmethod
    def create(cls, ctx: Any) -> "Counters":
        return cls(ctx.Value("i", 0), ctx.Value("d", 0.0), ctx.Value("d", 0.0))

    def reset(self) -> None:
        self.count.value, self.first.value, self.last.value = 0, 0.0, 0.0


async def _serve(counters: Counters, port: int, ready: Any) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                now = time.time()
                with counters.count.get_lock():
                    counters.count.value += 1
                    if not counters.first.value:
                        counters.first.value = now
                    counters.last.value = now
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    ready.set()
    async with server:
        await server.serve_forever()


def _run(counters: Counters, port: int, ready: Any) -> None:
    asyncio.run(_serve(counters, port, ready))


def start(port: int) -> tuple[mp.process.BaseProcess, Counters]:
    ctx = mp.get_context("spawn")
    counters = Counters.create(ctx)
    ready = ctx.Event()
    proc = ctx.Process(target=_run, args=(counters, port, ready), daemon=True)
    proc.start()
    if not ready.wait(10):
        raise RuntimeError("webhook receiver did not start")
    return proc, counters
