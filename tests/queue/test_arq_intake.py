"""Calls a plain arq pool enqueues (arq's own `create_pool`, arq's own keys) are served by
ForgeWorker and answered in arq's keys, so arq's own `Job` reads status, info and result."""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import Job as ArqJob
from arq.jobs import JobResult, JobStatus, SerializationError
from arq.worker import JobExecutionFailed, Retry, func
from forgestack_queue.arq_calls import INTAKE_QUEUE, job_id_for
from forgestack_queue.arq_mirror import STALE_TAKE_MS
from forgestack_queue.arq_pool import create_pool as forge_create_pool
from forgestack_queue.job import Job
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.records import JobRecord
from forgestack_queue.runner import Handler
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, run_burst_worker, running
from forgestack_queue.worker import ForgeWorker
from pydantic import BaseModel
from redis.asyncio import Redis


class GreetData(BaseModel):
    name: str


class GreetResult(BaseModel):
    text: str


@dataclass(frozen=True)
class Contract:
    data_model: type[BaseModel]
    result_model: type[BaseModel]
    defaults: JobOptions


GREET = Contract(GreetData, GreetResult, JobOptions(attempts=2))
runs: list[tuple[str, dict[str, Any]]] = []
issued: list[str] = []
"""arq ids this test enqueued: arq's keys are not under the test's prefix, so they are removed."""


async def greet(job: Job[GreetData]) -> GreetResult:
    runs.append(("greet", dict(job.ctx)))
    if job.data.name == "nobody":
        raise ValueError("nobody to greet")
    return GreetResult(text=f"hello {job.data.name}")


async def add(ctx: dict[str, Any], a: int, b: int = 0) -> int:
    runs.append(("add", dict(ctx)))
    return a + b


async def slow(ctx: dict[str, Any], seconds: float) -> str:
    runs.append(("slow", dict(ctx)))
    await asyncio.sleep(seconds)
    return "slept"


async def later(ctx: dict[str, Any]) -> int:
    runs.append(("later", dict(ctx)))
    if ctx["job_try"] == 1:
        raise Retry(defer=1)
    return int(ctx["job_try"])


FUNCTIONS = [
    func(greet, name="greet"),  # type: ignore[arg-type]
    func(add, name="add"),
    func(slow, name="slow"),
    func(later, name="later", max_tries=3),
]


def _json_dumps(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


@pytest.fixture(autouse=True)
def _clear_runs() -> None:
    runs.clear()
    issued.clear()


@pytest.fixture
def arq_queue(queue_prefix: str) -> str:
    """arq's `queue_name`, under the test's prefix so the redis fixture removes it."""
    return f"{queue_prefix}:arq-queue"


@pytest.fixture
async def plain(redis_url: str, arq_queue: str, redis: Redis) -> AsyncIterator[ArqRedis]:
    """arq's own pool: pickle, as arq ships it."""
    pool = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=arq_queue)
    try:
        yield pool
    finally:
        await _remove_arq_keys(redis, pool)
        await pool.aclose()


@pytest.fixture
async def json_pool(redis_url: str, arq_queue: str, redis: Redis) -> AsyncIterator[ArqRedis]:
    """arq's own pool with a JSON serializer, as arq's docs show for non-pickle setups."""
    pool = await create_pool(
        RedisSettings.from_dsn(redis_url),
        default_queue_name=arq_queue,
        job_serializer=_json_dumps,
        job_deserializer=json.loads,
    )
    try:
        yield pool
    finally:
        await _remove_arq_keys(redis, pool)
        await pool.aclose()


async def _remove_arq_keys(redis: Redis, pool: ArqRedis) -> None:
    """arq's keys are not under the test's prefix: remove those of the calls this test made."""
    ids = [m.decode() for m in await redis.zrange(pool.default_queue_name, 0, -1)]
    ids += [i for i in issued if i not in ids]
    for arq_id in ids:
        await redis.delete(
            *(p + arq_id for p in (job_key_prefix, result_key_prefix, in_progress_key_prefix))
        )


async def enqueue(pool: ArqRedis, function: str, *args: Any, **kwargs: Any) -> ArqJob:
    job = await pool.enqueue_job(function, *args, **kwargs)
    assert job is not None
    issued.append(job.job_id)
    return job


@pytest.fixture
def worker(redis_url: str, queue_prefix: str, arq_queue: str) -> Callable[..., ForgeWorker]:
    def build(**kwargs: Any) -> ForgeWorker:
        settings: dict[str, Any] = {
            "functions": FUNCTIONS,
            "queue_contracts": {"greet": GREET},
            "queue_name": arq_queue,
            "poll_delay": 0.05,
            "burst": False,
        }
        return make_worker(redis_url, [], prefix=queue_prefix, **(settings | kwargs))

    return build


async def _record(redis: Redis, prefix: str, queue: str, job_id: str) -> JobRecord:
    record = await Queue(redis, queue, prefix=prefix).get_job(job_id)
    assert record is not None, f"no job {job_id} in {queue}"
    return record


async def test_a_pickled_call_runs_where_pickle_is_allowed_and_its_result_is_typed(
    plain: ArqRedis, worker: Callable[..., ForgeWorker], redis: Redis, queue_prefix: str
) -> None:
    job = await enqueue(plain, "greet", name="ada")
    failing = await enqueue(plain, "greet", GreetData(name="nobody"))
    assert await job.status() == JobStatus.queued
    async with running(worker(arq_intake_pickle=True)):
        assert await job.result(timeout=10, poll_delay=0.02) == GreetResult(text="hello ada")
        with pytest.raises(JobExecutionFailed, match="ValueError: nobody to greet"):
            await failing.result(timeout=10, poll_delay=0.02)
    assert await job.status() == JobStatus.complete
    info = await job.info()
    assert isinstance(info, JobResult)
    assert (info.function, info.success, info.job_try) == ("greet", True, 1)
    assert info.queue_name == plain.default_queue_name
    # The same id in our queue, unowned (no organisation sent it), completed with its result.
    record = await _record(redis, queue_prefix, "greet", job.job_id)
    assert (record.state, record.owner, record.result) == (
        JobState.COMPLETED,
        None,
        {"text": "hello ada"},
    )
    failed = await _record(redis, queue_prefix, "greet", failing.job_id)
    assert (failed.state, failed.attempts_made) == (JobState.FAILED, 2)  # the catalog's attempts
    # Answered as arq's worker does: the call left arq's queue and its job key is gone.
    assert await redis.zcard(plain.default_queue_name) == 0
    assert not await redis.exists(job_key_prefix + job.job_id)


async def test_pickle_is_refused_by_default_and_the_call_fails_visibly(
    plain: ArqRedis, worker: Callable[..., ForgeWorker], redis: Redis, queue_prefix: str
) -> None:
    job = await enqueue(plain, "greet", name="ada")
    async with running(worker()):
        with pytest.raises(JobExecutionFailed, match="pickled") as raised:
            await job.result(timeout=10, poll_delay=0.02)
    assert "WORKER_ARQ_PICKLE" in str(raised.value)
    record = await _record(redis, queue_prefix, INTAKE_QUEUE, job.job_id)
    assert record.state is JobState.FAILED
    assert record.failed_reason is not None and "pickled" in record.failed_reason
    page = await Queue(redis, INTAKE_QUEUE, prefix=queue_prefix).get_jobs(JobState.FAILED)
    assert [j.id for j in page.jobs] == [job.job_id]
    assert runs == []


async def test_an_arq_style_call_runs_with_arqs_ctx_and_job_try(
    json_pool: ArqRedis, worker: Callable[..., ForgeWorker]
) -> None:
    job = await enqueue(json_pool, "add", 2, b=3, _job_try=2)
    async with running(worker()):
        assert await job.result(timeout=10, poll_delay=0.02) == 5
    [(name, ctx)] = runs
    assert (name, ctx["job_id"], ctx["job_try"]) == ("add", job.job_id, 2)
    info = await job.info()
    assert info is not None
    assert (list(info.args), info.kwargs) == ([2], {"b": 3})  # JSON has no tuples
    assert abs(ctx["enqueue_time"].timestamp() - info.enqueue_time.timestamp()) < 0.002


async def test_an_invalid_payload_is_a_failed_job_of_its_queue_with_the_reason(
    json_pool: ArqRedis, worker: Callable[..., ForgeWorker], redis: Redis, queue_prefix: str
) -> None:
    job = await enqueue(json_pool, "greet", wrong=1)
    async with running(worker()):
        # A JSON answer cannot carry an exception: arq raises SerializationError with the reason.
        with pytest.raises(SerializationError, match="validation error for GreetData"):
            await job.result(timeout=10, poll_delay=0.02)
    record = await _record(redis, queue_prefix, "greet", job.job_id)
    assert record.state is JobState.FAILED
    assert record.failed_reason is not None
    assert "validation error for GreetData" in record.failed_reason
    assert record.data == {"args": [], "kwargs": {"wrong": 1}}
    assert runs == []


async def test_an_unknown_function_fails_visibly_in_the_intake_queue(
    json_pool: ArqRedis, worker: Callable[..., ForgeWorker], redis: Redis, queue_prefix: str
) -> None:
    job = await enqueue(json_pool, "nope", 1)
    async with running(worker()):
        with pytest.raises(SerializationError, match="function 'nope' not found"):
            await job.result(timeout=10, poll_delay=0.02)
    record = await _record(redis, queue_prefix, INTAKE_QUEUE, job.job_id)
    assert (record.state, record.name) == (JobState.FAILED, "nope")
    assert record.data == {"args": [1], "kwargs": {}}


async def test_job_id_semantics_match_arq_before_and_after_the_run(
    json_pool: ArqRedis,
    worker: Callable[..., ForgeWorker],
    redis_url: str,
    queue_prefix: str,
) -> None:
    job = await enqueue(json_pool, "add", 1, _job_id=f"{queue_prefix}-once")
    assert await json_pool.enqueue_job("add", 2, _job_id=job.job_id) is None
    async with running(worker()):
        assert await job.result(timeout=10, poll_delay=0.02) == 1
        # arq keeps refusing the id while its result is kept; our own pool agrees.
        assert await json_pool.enqueue_job("add", 3, _job_id=job.job_id) is None
        ours = await forge_create_pool(RedisSettings.from_dsn(redis_url), queue_prefix=queue_prefix)
        try:
            assert await ours.enqueue_job("add", 4, _job_id=job.job_id) is None
        finally:
            await ours.aclose()
    assert [name for name, _ in runs] == ["add"]


async def test_an_id_arq_freed_runs_again_and_a_native_jobs_id_is_refused(
    json_pool: ArqRedis,
    worker: Callable[..., ForgeWorker],
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
) -> None:
    ours = await forge_create_pool(RedisSettings.from_dsn(redis_url), queue_prefix=queue_prefix)
    native = await ours.enqueue_job("add", 10, _job_id=f"{queue_prefix}-native")
    assert native is not None
    # keep_result=0: arq keeps no result, so the id is free again once the call ends.
    async with running(worker(keep_result=0)):
        first = await enqueue(json_pool, "add", 1, _job_id=f"{queue_prefix}-reused")
        await _until(lambda: _status_is(first, JobStatus.not_found))
        again = await enqueue(json_pool, "add", 2, _job_id=first.job_id)
        clash = await enqueue(json_pool, "add", 3, _job_id=native.job_id)
        await _until(lambda: _status_is(again, JobStatus.not_found))
        await _until(lambda: _status_is(clash, JobStatus.not_found))
    await ours.aclose()
    record = await _record(redis, queue_prefix, "add", first.job_id)
    assert (record.state, record.result) == (JobState.COMPLETED, 2)
    assert sorted(ctx["job_id"] for _, ctx in runs) == sorted(
        [native.job_id, first.job_id, first.job_id]
    )


async def test_a_refused_id_is_answered_in_arqs_result_key(
    json_pool: ArqRedis,
    worker: Callable[..., ForgeWorker],
    redis_url: str,
    queue_prefix: str,
) -> None:
    ours = await forge_create_pool(RedisSettings.from_dsn(redis_url), queue_prefix=queue_prefix)
    native = await ours.enqueue_job("add", 10, _job_id=f"{queue_prefix}-taken")
    assert native is not None
    clash = await enqueue(json_pool, "add", 3, _job_id=native.job_id)
    async with running(worker()):
        with pytest.raises(SerializationError, match="in use by another ForgeStack job"):
            await clash.result(timeout=10, poll_delay=0.02)
        assert await native.result(timeout=10) == 10
    await ours.aclose()


async def test_defer_by_waits_in_our_delayed_set_and_status_follows_arq(
    json_pool: ArqRedis, worker: Callable[..., ForgeWorker], redis: Redis, queue_prefix: str
) -> None:
    job = await enqueue(json_pool, "add", 1, _defer_by=1)
    assert await job.status() == JobStatus.deferred
    async with running(worker()):
        await _until(lambda: _taken(redis, queue_prefix, "add", job.job_id))
        record = await _record(redis, queue_prefix, "add", job.job_id)
        assert record.state is JobState.DELAYED
        assert await job.status() == JobStatus.deferred
        assert await job.result(timeout=10, poll_delay=0.02) == 1
    info = await job.info()
    assert isinstance(info, JobResult)
    assert (info.start_time - info.enqueue_time).total_seconds() >= 1.0


async def test_status_goes_queued_in_progress_complete(
    json_pool: ArqRedis, worker: Callable[..., ForgeWorker]
) -> None:
    job = await enqueue(json_pool, "slow", 0.6)
    seen = [await job.status()]
    async with running(worker()):
        deadline = time.monotonic() + 10
        while seen[-1] != JobStatus.complete and time.monotonic() < deadline:
            status = await job.status()
            if status != seen[-1]:
                seen.append(status)
            await asyncio.sleep(0.01)
    assert seen == [JobStatus.queued, JobStatus.in_progress, JobStatus.complete]
    assert await job.result() == "slept"


async def test_retry_defer_shows_deferred_then_completes_on_the_next_try(
    json_pool: ArqRedis, worker: Callable[..., ForgeWorker]
) -> None:
    job = await enqueue(json_pool, "later")
    async with running(worker()):
        await _until(lambda: _status_is(job, JobStatus.deferred))
        assert await job.result(timeout=10, poll_delay=0.02) == 2
    info = await job.info()
    assert isinstance(info, JobResult)
    assert info.job_try == 2


async def test_expires_fails_a_call_that_outlived_it(
    json_pool: ArqRedis, worker: Callable[..., ForgeWorker], redis: Redis, queue_prefix: str
) -> None:
    gone = await enqueue(json_pool, "add", 1, _expires=0.1)
    await asyncio.sleep(0.3)  # its key expired before any worker ran
    late = await enqueue(json_pool, "add", 2, _defer_by=1, _expires=0.5)
    async with running(worker()):
        with pytest.raises(SerializationError, match="expired before a worker took it"):
            await gone.result(timeout=10, poll_delay=0.02)
        with pytest.raises(SerializationError, match=r"job expired at .* \(arq _expires\)"):
            await late.result(timeout=10, poll_delay=0.02)
    assert runs == []
    record = await _record(redis, queue_prefix, "add", late.job_id)
    assert record.state is JobState.FAILED


async def test_ids_our_jobs_refuse_are_mapped_and_answered_under_arqs_id(
    json_pool: ArqRedis, worker: Callable[..., ForgeWorker], redis: Redis, queue_prefix: str
) -> None:
    numeric = await enqueue(json_pool, "add", 1, _job_id=str(uuid.uuid4().int))
    spaced = await enqueue(json_pool, "add", 2, _job_id=f"{queue_prefix} with spaces")
    async with running(worker()):
        assert await numeric.result(timeout=10, poll_delay=0.02) == 1
        assert await spaced.result(timeout=10, poll_delay=0.02) == 2
    for job in (numeric, spaced):
        ours = job_id_for(job.job_id)
        assert ours != job.job_id and ours.startswith("arq-")
        record = await _record(redis, queue_prefix, "add", ours)
        assert record.options.arq is not None and record.options.arq.arq_id == job.job_id


async def test_a_call_whose_taker_died_is_taken_again(
    json_pool: ArqRedis, worker: Callable[..., ForgeWorker], redis: Redis, queue_prefix: str
) -> None:
    job = await enqueue(json_pool, "add", 7)
    taken = f"{queue_prefix}:arq-taken:{json_pool.default_queue_name}"
    # As a worker leaves it that died between taking the call and adding it to our queue.
    died_at = int(time.time() * 1000) - STALE_TAKE_MS - 1000
    await redis.zadd(taken, {job.job_id: -died_at})
    async with running(worker()):
        assert await job.result(timeout=10, poll_delay=0.02) == 7
    assert await redis.zcard(taken) == 0


async def test_two_workers_run_each_call_once(
    json_pool: ArqRedis, worker: Callable[..., ForgeWorker]
) -> None:
    jobs = [await enqueue(json_pool, "add", n) for n in range(60)]
    async with running(worker(), worker()):
        results = [await job.result(timeout=20, poll_delay=0.02) for job in jobs]
    assert results == list(range(60))
    assert sorted(ctx["job_id"] for _, ctx in runs) == sorted(job.job_id for job in jobs)


async def test_a_burst_worker_answers_before_it_exits(
    json_pool: ArqRedis, redis_url: str, queue_prefix: str, arq_queue: str
) -> None:
    job = await enqueue(json_pool, "add", 5)
    await run_burst_worker(
        redis_url,
        [],
        prefix=queue_prefix,
        functions=FUNCTIONS,
        queue_name=arq_queue,
        poll_delay=0.05,
    )
    assert await job.status() == JobStatus.complete
    assert await job.result(timeout=0) == 5


async def test_intake_off_leaves_arqs_queue_alone(
    json_pool: ArqRedis, worker: Callable[..., ForgeWorker], redis: Redis
) -> None:
    job = await enqueue(json_pool, "add", 5)
    async with running(worker(arq_intake=False)):
        await asyncio.sleep(0.3)
    assert await job.status() == JobStatus.queued
    assert runs == []


async def test_operator_actions_reach_arqs_view(
    json_pool: ArqRedis, worker: Callable[..., ForgeWorker], redis: Redis, queue_prefix: str
) -> None:
    """Removed by the operator: arq's `not_found`; cancelled: a failure `result()` raises."""
    removed = await enqueue(json_pool, "add", 1, _defer_by=30)
    cancelled = await enqueue(json_pool, "add", 2, _defer_by=30)
    queue = Queue(redis, "add", prefix=queue_prefix)
    async with running(worker()):
        await _until(lambda: _taken(redis, queue_prefix, "add", cancelled.job_id))
        await queue.remove(removed.job_id)
        await queue.cancel(cancelled.job_id)
        await _until(lambda: _status_is(removed, JobStatus.not_found))
        with pytest.raises(SerializationError, match="cancelled"):
            await cancelled.result(timeout=10, poll_delay=0.02)
    assert runs == []


async def test_a_typed_handler_outside_the_catalog_gets_its_model(
    json_pool: ArqRedis, redis_url: str, queue_prefix: str, arq_queue: str
) -> None:
    seen: list[GreetData] = []

    async def typed(job: Job[GreetData]) -> str:
        seen.append(job.data)
        return job.data.name

    good = await enqueue(json_pool, "typed", {"name": "ada"})
    bad = await enqueue(json_pool, "typed", 1, 2)
    handler = Handler(queue="typed", fn=typed, data_model=GreetData)
    worker = make_worker(
        redis_url, [handler], prefix=queue_prefix, burst=False, queue_name=arq_queue,
        poll_delay=0.05,
    )  # fmt: skip
    async with running(worker):
        assert await good.result(timeout=10, poll_delay=0.02) == "ada"
        with pytest.raises(SerializationError, match="takes one GreetData"):
            await bad.result(timeout=10, poll_delay=0.02)
    assert seen == [GreetData(name="ada")]


async def _status_is(job: ArqJob, status: JobStatus) -> bool:
    return await job.status() == status


async def _taken(redis: Redis, prefix: str, queue: str, job_id: str) -> bool:
    return await Queue(redis, queue, prefix=prefix).get_job(job_id) is not None


async def _until(check: Callable[[], Any]) -> None:
    async with asyncio.timeout(10):
        while not await check():
            await asyncio.sleep(0.02)


async def test_a_call_with_a_run_time_that_is_not_a_time_is_refused_alone(
    json_pool: ArqRedis, worker: Callable[..., ForgeWorker], redis: Redis, queue_prefix: str
) -> None:
    # Only a hand-made ZADD gives arq's queue an infinite score; it used to raise in the pass and
    # hold back every other call taken with it, pass after pass.
    odd = await enqueue(json_pool, "add", 1)
    await redis.zadd(json_pool.default_queue_name, {odd.job_id: float("inf")})
    fine = [await enqueue(json_pool, "add", n) for n in (2, 3)]
    async with running(worker()):
        assert [await job.result(timeout=10, poll_delay=0.02) for job in fine] == [2, 3]
        with pytest.raises(SerializationError, match="is not a time"):
            await odd.result(timeout=10, poll_delay=0.02)
    record = await _record(redis, queue_prefix, "add", odd.job_id)
    assert record.state == JobState.FAILED
