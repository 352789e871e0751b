"""An outcome write whose reply was lost ran all the same: the worker retries it, and the retry
finds the attempt already ended. That is its own earlier write, not a lost lease: no "lease lost"
warning, and nothing recorded twice. A late outcome of an attempt whose lease really lapsed is
still refused and still warned about."""

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from forgestack_queue.claims import Claimer
from forgestack_queue.keys import job_key_prefix, queue_key_prefix
from forgestack_queue.options import Backoff, JobOptions
from forgestack_queue.outbox import OutcomeWriter
from forgestack_queue.producer import Queue
from forgestack_queue.runner import Outcome
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker
from loguru import logger
from redis.asyncio import Redis

from tests.queue.probe import PROBE, Probe, ProbeData
from tests.queue.reply_proxy import reply_dropping_proxy

LEASE_LOST = "lease lost"


@pytest.fixture
async def warnings() -> AsyncIterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    try:
        yield lines
    finally:
        logger.remove(sink)


async def _events(queue: Queue, job_id: str) -> list[str]:
    entries = await queue.redis.xrange(queue.keys.events)
    return [f[b"e"].decode() for _, f in entries if f[b"j"].decode() == job_id]


async def _run_losing_one_outcome_reply(
    redis: Redis, redis_url: str, queue_prefix: str, probe: Probe
) -> int:
    """A burst worker whose first outcome write runs but loses its reply; how many were lost."""
    fetch = scripts_for(redis).finish_claim
    await redis.script_load(fetch.script)
    async with reply_dropping_proxy(redis_url) as (proxy, url):
        proxy.drop_replies_to(fetch.sha.encode(), times=1)
        await run_burst_worker(url, [probe.handler()], prefix=queue_prefix, max_jobs=1)
    return proxy.dropped


@pytest.mark.parametrize("removed", [False, True], ids=["kept", "removed-on-complete"])
async def test_a_retried_completion_is_recognised_as_its_own(
    queue: Queue,
    probe: Probe,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
    warnings: list[str],
    removed: bool,
) -> None:
    added = await queue.add(ProbeData(tag="a"), JobOptions(remove_on_complete=removed))
    assert await _run_losing_one_outcome_reply(redis, redis_url, queue_prefix, probe) == 1
    assert [w for w in warnings if LEASE_LOST in w] == []
    assert probe.tags() == ["a"]
    assert (await _events(queue, added.id)).count("completed") == 1
    job = await queue.get_job(added.id)
    if removed:
        assert job is None
        return
    assert job is not None and job.state is JobState.COMPLETED and job.attempts_made == 1
    assert [e.event for e in job.history] == ["added", "started", "completed"]
    assert (await queue.counts())[JobState.COMPLETED] == 1


async def test_a_retried_retry_outcome_is_recognised_and_the_job_runs_again_once(
    queue: Queue, probe: Probe, redis: Redis, redis_url: str, queue_prefix: str, warnings: list[str]
) -> None:
    added = await queue.add(
        ProbeData(tag="a", mode="fail-until-2"),
        JobOptions(attempts=3, backoff=Backoff(type="fixed", delay=0)),
    )
    assert await _run_losing_one_outcome_reply(redis, redis_url, queue_prefix, probe) == 1
    assert [w for w in warnings if LEASE_LOST in w] == []
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.COMPLETED and job.attempts_made == 2
    assert [(tag, attempt) for tag, attempt, _ in probe.runs] == [("a", 1), ("a", 2)]
    assert [e.event for e in job.history].count("retry") == 1


def _finish_args(queue: Queue, rows: list[list[Any]]) -> list[Any]:
    return [job_key_prefix(queue.prefix), queue_key_prefix(queue.prefix), json.dumps(rows)]


async def test_the_script_tells_its_own_earlier_write_from_a_lost_lease(
    queue: Queue, queue_prefix: str
) -> None:
    """finish.lua's reply per row: 1 recorded, 2 this attempt already ended so (a retried write),
    3 the job is gone, 0 the attempt no longer holds the job (its lease lapsed)."""
    scripts = scripts_for(queue.redis)
    for tag in "abc":
        await queue.add(ProbeData(tag=tag), JobOptions(attempts=2))
    claimer = Claimer(scripts, queue_prefix, [PROBE], worker_id="w1", lease_ms=60_000)
    done, gone, stale = (await claimer.claim(3))[0]

    def row(job: Any, outcome: str, keep: int = -1) -> list[Any]:
        return [PROBE, job.id, job.token, outcome, "{}", "", keep, -1, 0]

    rows = [row(done, "completed"), row(gone, "completed", keep=0)]
    assert await scripts.finish(args=_finish_args(queue, rows)) == [1, 1]
    assert await scripts.finish(args=_finish_args(queue, rows)) == [2, 3]
    # Another outcome for an attempt that already ended some other way is not its own.
    assert await scripts.finish(args=_finish_args(queue, [row(done, "failed")])) == [0]
    ended = await queue.get_job(done.id)
    assert ended is not None
    assert [e.event for e in ended.history] == ["added", "started", "completed"]

    short = Claimer(scripts, queue_prefix, [PROBE], worker_id="w2", lease_ms=1)
    await queue.redis.zadd(queue.keys.active, {stale.id: 0})  # its lease ran out
    recovered, _, _ = await short.claim(1)  # recovers it (attempt spent), then claims it again
    assert [j.id for j in recovered] == [stale.id] and recovered[0].attempt == 2
    assert await scripts.finish(args=_finish_args(queue, [row(stale, "completed")])) == [0]


async def test_a_late_outcome_after_a_real_lease_loss_is_still_warned_about(
    queue: Queue, queue_prefix: str, warnings: list[str]
) -> None:
    scripts = scripts_for(queue.redis)
    added = await queue.add(ProbeData(tag="a"), JobOptions(attempts=2))
    (lost,), _, _ = await Claimer(
        scripts, queue_prefix, [PROBE], worker_id="dead", lease_ms=60_000
    ).claim(1)
    await queue.redis.zadd(queue.keys.active, {lost.id: 0})  # its lease ran out
    await Claimer(scripts, queue_prefix, [PROBE], worker_id="next", lease_ms=60_000).claim(1)
    writer = OutcomeWriter(
        scripts, job_key_prefix(queue_prefix), queue_key_prefix(queue_prefix), give_up_after_s=1
    )
    await writer.record(lost, Outcome("completed", b"{}"))
    assert [w for w in warnings if LEASE_LOST in w] == [
        "lease lost before the attempt ended: its outcome was discarded"
    ]
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.ACTIVE
    assert (job.history[-1].event, job.history[-1].attempt) == ("started", 2)


async def test_a_late_outcome_after_a_lease_loss_and_a_manual_retry_is_still_warned_about(
    queue: Queue, queue_prefix: str, warnings: list[str]
) -> None:
    """A manual retry restarts the attempt numbers: the stalled worker's attempt 1 (its lease
    lapsed before the retry) must not pass for the attempt 1 that ran after it. Its first write
    was never retried, so it cannot be its own earlier write."""
    scripts = scripts_for(queue.redis)
    added = await queue.add(ProbeData(tag="a"), JobOptions(attempts=1))
    (lost,), _, _ = await Claimer(
        scripts, queue_prefix, [PROBE], worker_id="dead", lease_ms=60_000
    ).claim(1)
    await queue.redis.zadd(queue.keys.active, {lost.id: 0})  # its lease ran out
    other = Claimer(scripts, queue_prefix, [PROBE], worker_id="next", lease_ms=60_000)
    assert (await other.claim(1))[0] == []  # recovers it: failed, its one attempt spent
    await queue.retry(added.id)  # an operator's retry
    (rerun,), _, _ = await other.claim(1)
    assert rerun.attempt == lost.attempt == 1
    rows = [[PROBE, rerun.id, rerun.token, "completed", "{}", "", -1, -1, 0]]
    assert await scripts.finish(args=_finish_args(queue, rows)) == [1]
    writer = OutcomeWriter(
        scripts, job_key_prefix(queue_prefix), queue_key_prefix(queue_prefix), give_up_after_s=1
    )
    await writer.record(lost, Outcome("completed", b"{}"))
    assert [w for w in warnings if LEASE_LOST in w] == [
        "lease lost before the attempt ended: its outcome was discarded"
    ]
