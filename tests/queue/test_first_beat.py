"""The worker's first heartbeat (health key, registration, cron ticks) runs beside its first
claim instead of before it, so a start reaches its first job sooner; it still happens, and its
failure is handled like any Redis error of the loop."""

import asyncio
from typing import Any

import pytest
from arq.cron import cron
from forgestack_queue.arq_intake import INTAKE_QUEUE
from forgestack_queue.claims import Claimer
from forgestack_queue.cron import CRON_QUEUE
from forgestack_queue.producer import Queue
from forgestack_queue.runner import ClaimedJob
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, run_burst_worker, running
from forgestack_queue.worker import ForgeWorker
from forgestack_queue.workers import live_workers
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.queue.probe import Probe, ProbeData
from tests.queue.until import until


async def _run_until_registered(queue: Queue, probe: Probe, redis_url: str, prefix: str) -> None:
    """Runs a worker until its first job has started and it is listed as live."""
    worker = make_worker(redis_url, [probe.handler()], prefix=prefix, burst=False)
    async with running(worker):
        await asyncio.wait_for(probe.started.wait(), 5)

        async def registered() -> bool:
            return worker.worker_id in {w.id for w in await live_workers(queue.redis, prefix)}

        await until(registered)


async def test_the_first_claim_goes_out_before_the_first_heartbeat(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sent first, not only called first: the claim's script call goes out before the beat's
    first command (arq's health check)."""
    order: list[str] = []
    real_claim, real_health = Claimer.claim, ForgeWorker.record_health

    async def claim(self: Claimer, want: int) -> tuple[list[ClaimedJob], int, int]:
        if INTAKE_QUEUE not in self._by_queue:
            order.append("claim")  # the worker's own claimer, not the arq intake's
        return await real_claim(self, want)

    async def health(self: ForgeWorker) -> None:
        order.append("beat")
        await real_health(self)

    monkeypatch.setattr(Claimer, "claim", claim)
    monkeypatch.setattr(ForgeWorker, "record_health", health)
    await queue.add(ProbeData(tag="a"))
    await _run_until_registered(queue, probe, redis_url, queue_prefix)
    assert order[:2] == ["claim", "beat"]


async def test_a_first_heartbeat_that_fails_is_retried_by_the_loop(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_beat = ForgeWorker.heart_beat
    beats = 0

    async def beat(self: ForgeWorker) -> None:
        nonlocal beats
        beats += 1
        if beats == 1:
            raise RedisConnectionError("redis went away")
        await real_beat(self)

    monkeypatch.setattr(ForgeWorker, "heart_beat", beat)
    await queue.add(ProbeData(tag="a"))
    await _run_until_registered(queue, probe, redis_url, queue_prefix)
    assert probe.tags() == ["a"] and beats >= 2


async def test_a_burst_worker_runs_the_tick_its_first_heartbeat_adds(
    probe: Probe, queue: Queue, redis_url: str, queue_prefix: str
) -> None:
    """A `run_at_startup` cron job's tick is added by the first heartbeat, due at once: a burst
    worker that finds nothing else runs it before it ends, as when that beat went first."""
    ran: list[str] = []

    async def at_startup(ctx: dict[str, Any]) -> None:
        ran.append(ctx["job_id"])

    job = cron(at_startup, minute=0, second=0, run_at_startup=True, name="startup")
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix, cron_jobs=[job])
    counts = await Queue(queue.redis, CRON_QUEUE, prefix=queue_prefix).counts()
    assert len(ran) == 1 and counts[JobState.COMPLETED] == 1, (ran, counts)
    assert counts[JobState.WAITING] == 0, "the tick is left for a later start, run late"


async def test_a_burst_worker_raises_the_error_of_its_first_heartbeat(
    probe: Probe, redis_url: str, queue_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst that found nothing to run still ends with its first beat's error, not without it."""

    async def beat(self: ForgeWorker) -> None:
        raise RuntimeError("a cron schedule that cannot be computed")

    monkeypatch.setattr(ForgeWorker, "heart_beat", beat)
    with pytest.raises(RuntimeError, match="cannot be computed"):
        await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
