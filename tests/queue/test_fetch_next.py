"""Finish and fetch next: the call that records an attempt's outcome also claims the job that takes
its slot (finish_claim.lua), with the same leases, tokens and fences as any claim."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from forgestack_queue.claims import Claimer
from forgestack_queue.events import EVENT_RESULT_MAX_BYTES
from forgestack_queue.job import Job
from forgestack_queue.keys import job_key_prefix, queue_key_prefix
from forgestack_queue.limits import QueueLimits
from forgestack_queue.meta import current_meta, job_meta
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.runner import ClaimedJob, Handler
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, run_burst_worker
from forgestack_queue.worker import ForgeWorker
from loguru import logger
from redis.asyncio import Redis

from tests.queue.owner_index import assert_indexes_agree
from tests.queue.probe import PROBE, Probe, ProbeData
from tests.queue.reply_proxy import reply_dropping_proxy


class Calls:
    """What each kind of claim call handed the worker, in call order."""

    def __init__(self) -> None:
        self.claims: list[list[str]] = []
        self.fetches: list[tuple[int, list[str]]] = []
        """(jobs asked for, ids claimed) per finish-and-claim call."""


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Records the claimer's calls (a spy on the real methods: Redis still does the work)."""
    seen = Calls()
    claim, finish_and_claim = Claimer.claim, Claimer.finish_and_claim

    async def spy_claim(self: Claimer, want: int) -> tuple[list[ClaimedJob], int, int]:
        jobs, next_due, now = await claim(self, want)
        seen.claims.append([job.id for job in jobs])
        return jobs, next_due, now

    async def spy_fetch(
        self: Claimer, finish_args: list[Any], want: int
    ) -> tuple[list[int], list[ClaimedJob]]:
        kept, jobs = await finish_and_claim(self, finish_args, want)
        seen.fetches.append((want, [job.id for job in jobs]))
        return kept, jobs

    monkeypatch.setattr(Claimer, "claim", spy_claim)
    monkeypatch.setattr(Claimer, "finish_and_claim", spy_fetch)
    return seen


async def _add(queue: Queue, *tags: str, **fields: Any) -> list[str]:
    return [(await queue.add(ProbeData(tag=t, **fields), JobOptions(attempts=1))).id for t in tags]


async def test_a_freed_slot_takes_its_next_job_in_the_call_that_records_the_last_one(
    queue: Queue, probe: Probe, calls: Calls, redis_url: str, queue_prefix: str
) -> None:
    ids = await _add(queue, "a", "b", "c", "d", "e")
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1)
    assert probe.tags() == ["a", "b", "c", "d", "e"]
    # The loop claims the first job (and finds nothing once all are done); every other job came
    # with the outcome of the one before it, one per freed slot.
    assert [job for claimed in calls.claims for job in claimed] == ids[:1]
    assert calls.fetches == [(1, [i]) for i in ids[1:]] + [(1, [])]
    for job_id in ids:
        job = await queue.get_job(job_id)
        assert job is not None and job.state is JobState.COMPLETED and job.attempts_made == 1
        assert [e.event for e in job.history] == ["added", "started", "completed"]


async def test_a_fetched_job_holds_a_lease_that_its_worker_renews(
    queue: Queue, probe: Probe, calls: Calls, redis_url: str, queue_prefix: str
) -> None:
    """The fetched job runs four lease periods while a second worker keeps claiming on the same
    queue: had its lease not been renewed, that worker would have recovered and run it again."""
    (first,) = await _add(queue, "first")
    (long,) = await _add(queue, "long", mode="sleep", seconds=1.2)
    runner = make_worker(
        redis_url, [probe.handler()], prefix=queue_prefix, max_jobs=1, lease_ms=300
    )
    rival = make_worker(
        redis_url,
        [probe.handler()],
        prefix=queue_prefix,
        burst=False,
        max_jobs=1,
        lease_ms=300,
        block_ms=50,
    )
    running = asyncio.create_task(runner.async_run())
    await _until(lambda: "long" in probe.tags())
    async with _running_in_background(rival):
        await running
    await runner.close()
    assert [job for claimed in calls.claims for job in claimed] == [first]
    assert calls.fetches[0] == (1, [long])
    assert probe.tags() == ["first", "long"]
    job = await queue.get_job(long)
    assert job is not None and job.state is JobState.COMPLETED and job.attempts_made == 1
    assert [e.event for e in job.history] == ["added", "started", "completed"]


async def test_a_fetched_job_carries_the_token_of_its_own_claim(
    queue: Queue, redis: Redis, queue_prefix: str
) -> None:
    """Tokens are per call: a fetched job's differs from the finished job's; the outcome written
    with the fetch is fenced by the finished job's own token, and a fetched job's lease runs
    from its claim."""
    a, b, c = await _add(queue, "a", "b", "c")
    claimer = Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w1", lease_ms=60_000)
    (claimed,), _, _ = await claimer.claim(1)
    assert claimed.id == a
    # An outcome whose lease was lost (its token replaced) is not recorded; the worker's slot is
    # free all the same, so the call still claims the next job.
    stale = [PROBE, a, "w1:not-its-token", "completed", "{}", "", -1, -1, 0]
    kept, (second,) = await claimer.finish_and_claim(_finish_args(queue_prefix, [stale]), 1)
    assert kept == [0] and second.id == b
    still = await queue.get_job(a)
    assert still is not None and still.state is JobState.ACTIVE
    row = [PROBE, a, claimed.token, "completed", "{}", "", -1, -1, 0]
    kept, (third,) = await claimer.finish_and_claim(_finish_args(queue_prefix, [row]), 1)
    assert kept == [1] and third.id == c
    tokens = {claimed.token, second.token, third.token}
    assert len(tokens) == 3 and all(t.startswith("w1:") for t in tokens)
    for job in (second, third):
        stored = await redis.hget(job_key_prefix(queue_prefix) + job.id, "token")
        assert stored == job.token.encode()
        deadline = await redis.zscore(queue.keys.active, job.id)
        now_ms = (await redis.time())[0] * 1000
        assert deadline is not None and now_ms < deadline <= now_ms + 61_000
    done = await queue.get_job(a)
    assert done is not None and done.state is JobState.COMPLETED


async def test_a_lost_reply_to_the_fetch_loses_no_job_and_runs_none_twice(
    queue: Queue, probe: Probe, calls: Calls, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    """The call ran (outcome stored, next job claimed) but its reply never arrived: the claim is
    undone by its token, the retried write finds the outcome already stored, and every job runs
    exactly once with one attempt spent."""
    owned = Queue(redis, PROBE, prefix=queue_prefix, owner="org-a")
    ids = [(await owned.add(ProbeData(tag=t), JobOptions(attempts=1))).id for t in "abcd"]
    fetch = scripts_for(redis).finish_claim
    await redis.script_load(fetch.script)
    async with reply_dropping_proxy(redis_url) as (proxy, url):
        proxy.drop_replies_to(fetch.sha.encode(), times=1)
        await run_burst_worker(url, [probe.handler()], prefix=queue_prefix, max_jobs=1)
    assert proxy.dropped == 1
    assert sorted(probe.tags()) == ["a", "b", "c", "d"]
    for job_id in ids:
        job = await owned.get_job(job_id)
        assert job is not None and job.state is JobState.COMPLETED, job
        assert job.attempts_made == 1
    # The job claimed by the lost call went back to waiting (attempt not spent) before it ran.
    second = await owned.get_job(ids[1])
    assert second is not None
    assert [e.event for e in second.history] == [
        "added",
        "started",
        "released",
        "started",
        "completed",
    ]
    await assert_indexes_agree(redis, queue.keys)


async def test_jobs_fetched_as_the_worker_stops_go_back_unspent(
    queue: Queue,
    probe: Probe,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fetch's reply arrives after shutdown began: the jobs it claimed are released, not run."""
    a, b = await _add(queue, "a", "b")
    replied, go_on = asyncio.Event(), asyncio.Event()
    finish_and_claim = Claimer.finish_and_claim

    async def held(
        self: Claimer, finish_args: list[Any], want: int
    ) -> tuple[list[int], list[ClaimedJob]]:
        reply = await finish_and_claim(self, finish_args, want)
        replied.set()
        await go_on.wait()  # the reply is "on the wire" while the worker starts stopping
        return reply

    monkeypatch.setattr(Claimer, "finish_and_claim", held)
    worker = make_worker(redis_url, [probe.handler()], prefix=queue_prefix, burst=False, max_jobs=1)
    main = asyncio.create_task(worker.async_run())
    await asyncio.wait_for(replied.wait(), 10)
    fetched = await queue.get_job(b)
    assert fetched is not None and fetched.state is JobState.ACTIVE  # claimed in Redis
    main.cancel()  # as SIGTERM does
    stopped = asyncio.create_task(_stop(main, worker))
    await _until(lambda: worker._stopping)
    go_on.set()
    await asyncio.wait_for(stopped, 10)
    assert probe.tags() == ["a"]
    job = await queue.get_job(b)
    assert job is not None and job.state is JobState.WAITING and job.attempts_made == 0
    assert [e.event for e in job.history][-1] == "released"
    monkeypatch.undo()
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    job = await queue.get_job(b)
    assert job is not None and job.state is JobState.COMPLETED and job.attempts_made == 1
    assert probe.tags() == ["a", "b"]
    assert (await queue.get_job(a)).state is JobState.COMPLETED  # type: ignore[union-attr]


async def test_a_fetched_job_inherits_nothing_from_the_attempt_before_it(
    queue: Queue, redis_url: str, queue_prefix: str
) -> None:
    """The fetched job is started by the outcome writer, a task the previous attempt created:
    it must still begin from the worker's own context, not that attempt's request id or meta."""
    seen: dict[str, dict[str, str]] = {}

    async def handle(job: Job[ProbeData]) -> None:
        seen[job.data.tag] = dict(current_meta())
        job.logger.info("running {}", job.data.tag)

    with job_meta(request_id="req-a"):
        await queue.add(ProbeData(tag="a"), JobOptions(attempts=1))
    await queue.add(ProbeData(tag="b"), JobOptions(attempts=1))
    lines: list[dict[str, Any]] = []
    sink = logger.add(lambda m: lines.append(dict(m.record["extra"])), level="INFO")
    try:
        handler = Handler(queue=PROBE, fn=handle, data_model=ProbeData)
        await run_burst_worker(redis_url, [handler], prefix=queue_prefix, max_jobs=1)
    finally:
        logger.remove(sink)
    # Whether attempts are traced depends on a tracer provider another test may have installed:
    # what must hold either way is that b carries nothing of a's (request id, trace).
    assert seen["a"]["request_id"] == "req-a"
    assert "request_id" not in seen["b"]
    assert seen["b"].get("trace_id") is None or seen["b"]["trace_id"] != seen["a"].get("trace_id")
    assert set(seen["b"]) <= {"trace_id", "traceparent"}
    by_job = {extra.get("job_id"): extra for extra in lines if "job_id" in extra}
    assert len(by_job) == 2
    assert [extra.get("request_id") for extra in by_job.values()].count("req-a") == 1


async def test_the_fetch_honours_the_queue_concurrency_cap(
    queue: Queue, calls: Calls, redis_url: str, queue_prefix: str
) -> None:
    """Two workers of four slots on a queue capped at two: jobs taken by fetches never run a
    third at once (the claim counts the active set after the outcomes left it)."""
    running_now, peak = 0, 0

    async def handle(job: Job[ProbeData]) -> None:
        nonlocal running_now, peak
        running_now += 1
        peak = max(peak, running_now)
        try:
            await asyncio.sleep(0.03)
        finally:
            running_now -= 1

    ids = await _add(queue, *(str(n) for n in range(12)))
    handler = Handler(queue=PROBE, fn=handle, data_model=ProbeData)
    limits = {PROBE: QueueLimits(concurrency=2)}
    workers = [
        make_worker(redis_url, [handler], prefix=queue_prefix, max_jobs=4, limits=limits)
        for _ in range(2)
    ]
    await asyncio.gather(*(w.async_run() for w in workers))
    for worker in workers:
        await worker.close()
    fetched = [job for _, claimed in calls.fetches for job in claimed]
    assert fetched and set(fetched) <= set(ids)
    assert peak == 2
    counts = await queue.counts()
    assert counts[JobState.COMPLETED] == 12


async def test_a_token_lost_while_lost_claims_are_released_is_kept_for_the_next_release(
    queue: Queue, redis: Redis, queue_prefix: str
) -> None:
    """The worker's loop and its outcome writer both claim: a reply lost by one while the other
    is releasing earlier lost claims must not be forgotten."""
    a, b = await _add(queue, "a", "b")
    claimer = Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id="w1", lease_ms=60_000)
    (first,), _, _ = await claimer.claim(1)
    (second,), _, _ = await claimer.claim(1)
    claimer._lost.append(_claim_token(first))
    releasing = asyncio.create_task(claimer.release_lost())
    await asyncio.sleep(0)  # the release is under way with the first token only
    claimer._lost.append(_claim_token(second))
    await releasing
    assert (await queue.get_job(a)).state is JobState.WAITING  # type: ignore[union-attr]
    assert (await queue.get_job(b)).state is JobState.ACTIVE  # type: ignore[union-attr]
    await claimer.release_lost()
    assert (await queue.get_job(b)).state is JobState.WAITING  # type: ignore[union-attr]


def _claim_token(job: ClaimedJob) -> str:
    """The token the claim call passed (claim.lua stamps `<call token>:<score>:<attempt>`)."""
    return job.token.rsplit(":", 2)[0]


def _finish_args(queue_prefix: str, rows: list[list[Any]]) -> list[Any]:
    return [
        job_key_prefix(queue_prefix),
        queue_key_prefix(queue_prefix),
        json.dumps(rows),
        EVENT_RESULT_MAX_BYTES,
    ]


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)


async def _stop(main: "asyncio.Task[None]", worker: ForgeWorker) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await main
    await worker.close()


@contextlib.asynccontextmanager
async def _running_in_background(worker: ForgeWorker) -> AsyncIterator[None]:
    task = asyncio.create_task(worker.async_run())
    try:
        yield
    finally:
        await _stop(_cancelled(task), worker)


def _cancelled(task: "asyncio.Task[None]") -> "asyncio.Task[None]":
    task.cancel()
    return task
