"""Two outcome writes in flight: outcomes that end while a write waits for its reply go out in a
second write beside it (once it carries enough rows, or its rows waited the linger), instead of
waiting for that reply. The worker's buffer reservations stay balanced across both."""

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from forgestack_queue.claims import Claimer
from forgestack_queue.keys import job_key_prefix, queue_key_prefix
from forgestack_queue.options import JobOptions
from forgestack_queue.outbox import OutcomeWriter
from forgestack_queue.prefetch import Prefetch
from forgestack_queue.producer import Queue
from forgestack_queue.runner import ClaimedJob, Outcome
from forgestack_queue.scripts import Scripts, scripts_for
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, run_burst_worker
from forgestack_queue.worker import OUTCOME_WRITES_IN_FLIGHT

from tests.queue.probe import PROBE, Probe, ProbeData
from tests.queue.until import until

DONE = Outcome("completed", b"{}")


class HeldFirstWrite:
    """The real finish script, whose first call waits (after Redis ran it: its reply is "on the
    wire") until the test lets it return."""

    def __init__(self, scripts: Scripts) -> None:
        self.finish = scripts.finish
        self.reply = asyncio.Event()
        self.calls = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        first = self.calls == 1
        result = await self.finish(*args, **kwargs)
        if first:
            await self.reply.wait()
        return result


async def _claimed(queue: Queue, queue_prefix: str, n: int) -> list[ClaimedJob]:
    for i in range(n):
        await queue.add(ProbeData(tag=str(i)), JobOptions(attempts=1))
    claimer = Claimer(
        scripts_for(queue.redis), queue_prefix, [PROBE], worker_id="w", lease_ms=60_000
    )
    jobs, _, _ = await claimer.claim(n)
    assert len(jobs) == n
    return jobs


def _writer(queue: Queue, queue_prefix: str, held: HeldFirstWrite, **kwargs: Any) -> OutcomeWriter:
    scripts = dataclasses.replace(scripts_for(queue.redis), finish=held)  # type: ignore[arg-type]
    return OutcomeWriter(
        scripts,
        job_key_prefix(queue_prefix),
        queue_key_prefix(queue_prefix),
        give_up_after_s=5,
        **kwargs,
    )


async def _two_behind_a_held_write(
    queue: Queue, queue_prefix: str, *, in_flight: int, linger_s: float = 30
) -> tuple[OutcomeWriter, HeldFirstWrite, ClaimedJob, list[ClaimedJob]]:
    """A writer (two rows fill a write) whose first write, of one outcome, waits for its reply,
    and two more outcomes submitted meanwhile."""
    first, *rest = await _claimed(queue, queue_prefix, 3)
    held = HeldFirstWrite(scripts_for(queue.redis))
    writer = _writer(
        queue, queue_prefix, held, linger_s=linger_s, linger_batch=2, in_flight=in_flight
    )
    writer.submit(first, DONE)
    await until(lambda: _now(held.calls == 1))
    for job in rest:
        writer.submit(job, DONE)
    return writer, held, first, rest


async def _completed(queue: Queue, jobs: list[ClaimedJob]) -> list[bool]:
    states = []
    for claimed in jobs:
        job = await queue.get_job(claimed.id)
        assert job is not None
        states.append(job.state is JobState.COMPLETED)
    return states


async def test_a_full_second_write_goes_out_while_the_first_waits_for_its_reply(
    queue: Queue, queue_prefix: str
) -> None:
    writer, held, first, rest = await _two_behind_a_held_write(queue, queue_prefix, in_flight=2)
    # Two rows fill a write: it goes out at once, though the first write's reply is held and
    # the linger is long.
    await until(lambda: _all_completed(queue, rest))
    assert held.calls == 2
    held.reply.set()
    await writer.drain()
    assert await _completed(queue, [first, *rest]) == [True, True, True]


async def test_a_lone_outcome_beside_a_write_goes_out_once_it_waited_the_linger(
    queue: Queue, queue_prefix: str
) -> None:
    """Even a slot's (urgent) outcome lingers beside a write under way, then goes without its
    reply: a write per ended attempt would cost Redis a call per job."""
    first, second = await _claimed(queue, queue_prefix, 2)
    held = HeldFirstWrite(scripts_for(queue.redis))
    writer = _writer(queue, queue_prefix, held, linger_s=0.2, linger_batch=10, in_flight=2)
    writer.submit(first, DONE, frees_slot=True)
    await until(lambda: _now(held.calls == 1))
    loop = asyncio.get_running_loop()
    submitted = loop.time()
    writer.submit(second, DONE, frees_slot=True)
    await until(lambda: _all_completed(queue, [second]))
    assert loop.time() - submitted >= 0.2
    assert held.calls == 2  # the second write went out while the first's reply was held
    held.reply.set()
    await writer.drain()
    assert await _completed(queue, [first]) == [True]


async def test_with_one_write_in_flight_the_next_waits_for_its_reply(
    queue: Queue, queue_prefix: str
) -> None:
    writer, held, first, rest = await _two_behind_a_held_write(
        queue, queue_prefix, in_flight=1, linger_s=0.01
    )
    await asyncio.sleep(0.3)
    assert held.calls == 1 and await _completed(queue, rest) == [False, False]
    held.reply.set()
    await writer.drain()
    assert await _completed(queue, [first, *rest]) == [True, True, True]


async def test_drain_waits_for_both_writes(queue: Queue, queue_prefix: str) -> None:
    writer, held, first, rest = await _two_behind_a_held_write(queue, queue_prefix, in_flight=2)
    drained = asyncio.create_task(writer.drain())
    await asyncio.sleep(0.2)
    assert not drained.done()  # the first write's reply is still held
    held.reply.set()
    await drained
    assert await _completed(queue, [first, *rest]) == [True, True, True]


async def test_the_worker_keeps_two_writes_in_flight_and_its_reservations_balance(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str, monkeypatch: Any
) -> None:
    """A busy worker's writes overlap (each claims the jobs its freed places take), and once it
    has drained, no buffer place is left reserved by a write, no slot held for one, and every
    job ran once."""
    assert OUTCOME_WRITES_IN_FLIGHT == 2
    most, now = 0, 0
    finish_and_claim = Claimer.finish_and_claim

    async def counting(self: Claimer, *args: Any) -> Any:
        nonlocal most, now
        now += 1
        most = max(most, now)
        try:
            await asyncio.sleep(0.002)  # a slower Redis: replies take a while to come back
            return await finish_and_claim(self, *args)
        finally:
            now -= 1

    monkeypatch.setattr(Claimer, "finish_and_claim", counting)
    for i in range(600):
        # Attempts of different lengths end apart, so some end while a write is under way
        # (instant ones all end together and share one write, however fast Redis replies).
        data = ProbeData(tag=str(i), mode="sleep", seconds=(i % 7) / 1000)
        await queue.add(data, JobOptions(attempts=1))
    worker = make_worker(redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=20)
    seen: list[int] = []
    after_write: Callable[..., None] = worker._after_write

    def checked(*args: Any) -> None:
        after_write(*args)
        seen.append(worker._prefetch.topping)

    monkeypatch.setattr(worker, "_after_write", checked)
    # The outbox took the method as its refill hook when the worker started: patch before that.
    try:
        await worker.async_run()
    finally:
        await worker.close()
    assert most == 2
    assert sorted(int(tag) for tag, _, _ in probe.runs) == list(range(600))
    assert min(seen) >= 0
    assert worker._prefetch.topping == 0 and worker._finishing == 0 and not worker._holding


async def _now(value: bool) -> bool:
    return value


async def _all_completed(queue: Queue, jobs: list[ClaimedJob]) -> bool:
    return all(await _completed(queue, jobs))


async def test_a_one_slot_worker_runs_in_queue_order_when_replies_come_back_late(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str, monkeypatch: Any
) -> None:
    """A serial queue's worker (one slot, a prefetch buffer) keeps one write under way: with two,
    every other write's reply, held back after Redis ran it, would be overtaken by the next
    one's, whose claimed job would start first."""
    finish_and_claim = Claimer.finish_and_claim
    calls = 0

    async def late_every_other_reply(self: Claimer, *args: Any) -> Any:
        nonlocal calls
        calls += 1
        reply = await finish_and_claim(self, *args)
        if calls % 2:
            await asyncio.sleep(0.01)
        return reply

    monkeypatch.setattr(Claimer, "finish_and_claim", late_every_other_reply)
    monkeypatch.setattr(Prefetch, "target", lambda self: self.limit)  # a buffer from the start
    tags = [f"{i:03d}" for i in range(60)]
    for tag in tags:
        await queue.add(ProbeData(tag=tag), JobOptions(attempts=1))
    await run_burst_worker(
        redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1, prefetch=4
    )
    assert probe.tags() == tags
