"""The API's Redis client sends the Lua script calls of concurrent requests together.

Every enqueue is one script call (the job with its audit event, `add_followed`), and so is each
other audit event a route records. Issued one by one, each pays redis-py's per-command cost (a connection checked out and probed, a write, a
read) of the same order as the rest of the request. Here script calls are queued and sent as one
pipeline: with no batch on the wire, on the event loop's next round; while one is out, as soon as
it returns (a group commit: the busier the API, the fuller and fewer the round trips), or after
MAX_WAIT_S on another connection if it is slow. One checkout and one write per batch, each reply
handed to its own caller.

Nothing about a call changes: each script still runs atomically and on its own (a pipeline, not a
transaction), in the order the calls were made, and each caller gets its own result or error (a
script error is that caller's; a connection error is everyone's in the batch, as it would have
been one by one). Only script calls are batched: they never block, so no call can hold up another,
and every other command goes out as before.

The batch is packed into the Redis protocol by hiredis (C) when every argument is a str, bytes or
int, as script calls' are (hiredis comes with the job layer's `redis[hiredis]`); redis-py's own
packer is Python and costs more than the rest of the send. Anything else is packed by redis-py.
"""

import asyncio
from itertools import chain
from typing import Any

from forgestack_queue.arq_pool import ForgeArqRedis
from hiredis import pack_command
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import Connection
from redis.exceptions import ResponseError

_BATCHED = frozenset({"EVALSHA", "EVAL"})
_PACKABLE = frozenset({str, bytes, int})
MAX_WAIT_S = 0.005
"""How long calls wait for the batch on the wire before going out on another connection: a slow or
stuck reply (a half-open connection) holds up nobody longer than this."""

_Call = tuple[tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]"]


class ScriptPipeliningRedis(ForgeArqRedis):
    """`ForgeArqRedis` whose script calls are pipelined across concurrent callers."""

    _pending: list[_Call] | None = None
    _sending: set["asyncio.Task[None]"] | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if args[0] not in _BATCHED:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self._pending is None:
            self._pending = []
            if self._sending:
                loop.call_later(MAX_WAIT_S, self._send_pending)
            else:
                loop.call_soon(self._send_pending)
        self._pending.append((args, options, future))
        return await future

    def _send_pending(self) -> None:
        calls, self._pending = self._pending, None
        if not calls:
            return
        if self._sending is None:
            self._sending = set()
        # Its own task: a caller that goes away must not cancel the others' calls.
        task = asyncio.ensure_future(self._send(calls))
        self._sending.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: "asyncio.Task[None]") -> None:
        if self._sending is not None:
            self._sending.discard(task)
        self._send_pending()

    async def _send(self, calls: list[_Call]) -> None:
        try:
            async with _PackedPipeline(
                self.connection_pool, self.response_callbacks, transaction=False, shard_hint=None
            ) as pipe:
                for args, options, _ in calls:
                    pipe.execute_command(*args, **options)
                results = await pipe.execute(raise_on_error=False)
        except BaseException as exc:
            for *_, future in calls:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (*_, future), result in zip(calls, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


class _PackedPipeline(Pipeline):
    """redis-py's non-transactional pipeline, packing with hiredis where it can."""

    async def _execute_pipeline(
        self, connection: Connection, commands: Any, raise_on_error: bool
    ) -> list[Any]:
        args_list = [args for args, _ in commands]
        if _PACKABLE.issuperset(map(type, chain.from_iterable(args_list))):
            await connection.send_packed_command(b"".join(map(pack_command, args_list)))
        else:
            await connection.send_packed_command(connection.pack_commands(args_list))
        response: list[Any] = []
        for args, options in commands:
            try:
                response.append(await self.parse_response(connection, args[0], **options))
            except ResponseError as exc:
                response.append(exc)
        if raise_on_error:
            self.raise_first_error(commands, response)
        return response
