"""The API's Redis client sends concurrent script calls as one pipeline; each caller still gets its
own result or error, a flushed script cache is recovered, and other commands are never held up."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from forgestack_api.script_pipelining import ScriptPipeliningRedis
from redis.exceptions import ConnectionError, ResponseError

from tests.conftest import free_port


class CountingRedis(ScriptPipeliningRedis):
    """Records the size of each pipeline it sends."""

    batches: list[int]

    async def _send(self, calls: list[Any]) -> None:
        self.batches.append(len(calls))
        await super()._send(calls)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[CountingRedis]:
    client = CountingRedis.from_url(redis_url)
    client.batches = []
    try:
        yield client
    finally:
        await client.aclose()


async def test_concurrent_script_calls_go_out_together_and_each_gets_its_own_answer(
    client: CountingRedis,
) -> None:
    echo = client.register_script("return ARGV[1]")
    assert await echo(args=["loads the script"]) == b"loads the script"
    client.batches.clear()
    answers = await asyncio.gather(*(echo(args=[str(i)]) for i in range(20)))
    assert answers == [str(i).encode() for i in range(20)]
    assert client.batches == [20]
    assert await echo(args=["alone"]) == b"alone"
    assert client.batches == [20, 1]


async def test_a_script_error_is_its_own_callers_alone(client: CountingRedis) -> None:
    echo = client.register_script("return ARGV[1]")
    fail = client.register_script("return redis.error_reply('refused: ' .. ARGV[1])")
    await echo(args=["loads the script"])
    await client.script_load(fail.script)
    client.batches.clear()
    answers = await asyncio.gather(
        echo(args=["a"]), fail(args=["b"]), echo(args=["c"]), return_exceptions=True
    )
    assert answers[0] == b"a"
    assert answers[2] == b"c"
    assert isinstance(answers[1], ResponseError)
    assert "refused: b" in str(answers[1])
    assert client.batches == [3]


async def test_scripts_flushed_from_redis_are_loaded_again(client: CountingRedis) -> None:
    echo = client.register_script("return 'v2:' .. ARGV[1]")
    assert await echo(args=["x"]) == b"v2:x"
    await client.script_flush()
    answers = await asyncio.gather(*(echo(args=[str(i)]) for i in range(5)))
    assert answers == [f"v2:{i}".encode() for i in range(5)]


async def test_other_commands_are_not_batched_or_held_up(client: CountingRedis) -> None:
    echo = client.register_script("return ARGV[1]")
    await echo(args=["loads the script"])
    client.batches.clear()
    key = f"fst-pipelining-{free_port()}"
    blocking = asyncio.ensure_future(client.blpop([key], timeout=2))
    script = asyncio.ensure_future(echo(args=["first"]))
    done, _ = await asyncio.wait({blocking, script}, return_when=asyncio.FIRST_COMPLETED)
    assert done == {script}
    await client.rpush(key, "v")
    assert await blocking == (key.encode(), b"v")
    assert client.batches == [1]


async def test_an_unreachable_redis_fails_every_caller_of_the_batch() -> None:
    client = CountingRedis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    client.batches = []
    echo = client.register_script("return ARGV[1]")
    try:
        answers = await asyncio.gather(
            *(echo(args=[str(i)]) for i in range(3)), return_exceptions=True
        )
    finally:
        await client.aclose()
    assert client.batches == [3]
    assert all(isinstance(answer, ConnectionError) for answer in answers), answers


async def test_arguments_reach_redis_intact_whichever_packer_sends_them(
    client: CountingRedis,
) -> None:
    """str, bytes and int go through hiredis' packer; a batch with a float, through redis-py's."""
    echo = client.register_script("return ARGV")
    await echo(args=["loads the script"])
    packed_by_hiredis = await asyncio.gather(
        echo(args=["é", b"\x00\xff", -3, "x" * 70_000]), echo(args=[""])
    )
    assert packed_by_hiredis == [["é".encode(), b"\x00\xff", b"-3", b"x" * 70_000], [b""]]
    packed_by_redis_py = await asyncio.gather(echo(args=[2.5, "y"]), echo(args=["z"]))
    assert packed_by_redis_py == [[b"2.5", b"y"], [b"z"]]


async def test_calls_made_while_a_batch_is_out_go_together_in_the_next(
    client: CountingRedis,
) -> None:
    # Holds Redis (and so the first batch's reply) for 20 ms.
    slow = client.register_script(
        "local t = redis.call('TIME') local start = t[1] * 1000000 + t[2] "
        "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start > 20000 "
        "return 'slow'"
    )
    echo = client.register_script("return ARGV[1]")
    await asyncio.gather(slow(), echo(args=["loads the script"]))
    client.batches.clear()
    first = asyncio.ensure_future(slow())
    await asyncio.sleep(0.001)  # the first batch is on the wire
    answers = await asyncio.gather(*(echo(args=[str(i)]) for i in range(10)))
    assert await first == b"slow"
    assert answers == [str(i).encode() for i in range(10)]
    assert client.batches == [1, 10]


class StuckFirstBatch(CountingRedis):
    """Its first batch never gets an answer, as on a half-open connection."""

    released: asyncio.Event

    async def _send(self, calls: list[Any]) -> None:
        stuck = not self.batches
        self.batches.append(len(calls))
        if stuck:
            await self.released.wait()
        await ScriptPipeliningRedis._send(self, calls)


async def test_a_batch_that_gets_no_answer_holds_up_later_calls_only_briefly(
    redis_url: str,
) -> None:
    client = StuckFirstBatch.from_url(redis_url)
    client.batches, client.released = [], asyncio.Event()
    echo = client.register_script("return ARGV[1]")
    try:
        await client.script_load(echo.script)
        stuck = asyncio.ensure_future(echo(args=["stuck"]))
        await asyncio.sleep(0.001)
        async with asyncio.timeout(1):
            assert await echo(args=["later"]) == b"later"
        assert not stuck.done()
        client.released.set()
        assert await stuck == b"stuck"
    finally:
        await client.aclose()
    assert client.batches == [1, 1]
