"""`ArqRedis.enqueue_job` on a ForgeStack pool: our atomic add underneath, arq's `Job` on top."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.connections import ArqRedis, RedisSettings
from arq.jobs import Job as ArqJob
from arq.jobs import JobResult, JobStatus, ResultNotFound
from arq.worker import func
from forgestack_queue.arq_job import ForgeJob, JobFailedError
from forgestack_queue.arq_pool import ForgeArqRedis, create_pool
from forgestack_queue.job import Job
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, running
from pydantic import BaseModel, ValidationError


class GreetData(BaseModel):
    name: str


class GreetResult(BaseModel):
    text: str


@dataclass(frozen=True)
class Contract:
    data_model: type[BaseModel]
    result_model: type[BaseModel]
    defaults: JobOptions


GREET = Contract(GreetData, GreetResult, JobOptions(attempts=2, remove_on_complete=False))
ctx_seen: list[dict[str, Any]] = []


async def greet(job: Job[GreetData]) -> GreetResult:
    ctx_seen.append(dict(job.ctx))
    if job.data.name == "nobody":
        raise ValueError("nobody to greet")
    return GreetResult(text=f"hello {job.data.name}")


async def add(ctx: dict[str, Any], a: int, b: int = 0) -> int:
    ctx_seen.append(dict(ctx))
    return a + b


@pytest.fixture
async def pool(redis_url: str, queue_prefix: str) -> AsyncIterator[ForgeArqRedis]:
    pool = await create_pool(
        RedisSettings.from_dsn(redis_url), queue_prefix=queue_prefix, contracts={"greet": GREET}
    )
    try:
        yield pool
    finally:
        keys = [k async for k in pool.scan_iter(match=f"{queue_prefix}:*", count=1000)]
        if keys:
            await pool.delete(*keys)
        await pool.aclose()


def worker_for(redis_url: str, queue_prefix: str) -> Any:
    return make_worker(
        redis_url,
        [],
        prefix=queue_prefix,
        burst=False,
        functions=[func(greet, name="greet"), func(add, name="add", max_tries=1)],
        queue_contracts={"greet": GREET},
    )


async def test_the_pool_is_arqs_and_enqueue_job_returns_arqs_job(pool: ForgeArqRedis) -> None:
    assert isinstance(pool, ArqRedis)
    job = await pool.enqueue_job("greet", GreetData(name="ada"))
    assert isinstance(job, ArqJob) and isinstance(job, ForgeJob)
    assert await job.status() is JobStatus.queued
    record = await Queue(pool, "greet", prefix=pool.queue_prefix).get_job(job.job_id)
    assert record is not None and record.data == {"name": "ada"}
    assert record.options.attempts == 2, "the contract's defaults apply"


async def test_typed_job_completes_and_result_is_the_result_model(
    pool: ForgeArqRedis, redis_url: str, queue_prefix: str
) -> None:
    ctx_seen.clear()
    job = await pool.enqueue_job("greet", name="grace")
    assert job is not None
    async with running(worker_for(redis_url, queue_prefix)):
        assert await job.result(timeout=10) == GreetResult(text="hello grace")
    assert await job.status() is JobStatus.complete
    info = await job.info()
    assert isinstance(info, JobResult) and info.success and info.job_try == 1
    assert info.function == "greet" and info.args == ({"name": "grace"},)
    (ctx,) = ctx_seen
    assert ctx["job_id"] == job.job_id and ctx["job_try"] == 1
    assert isinstance(ctx["redis"], ForgeArqRedis) and ctx["redis"].queue_prefix == queue_prefix
    assert abs(ctx["enqueue_time"] - datetime.now(UTC)) < timedelta(seconds=30)


async def test_arq_style_call_runs_with_ctx_and_arguments(
    pool: ForgeArqRedis, redis_url: str, queue_prefix: str
) -> None:
    job = await pool.enqueue_job("add", 2, b=40)
    assert job is not None
    async with running(worker_for(redis_url, queue_prefix)):
        assert await job.result(timeout=10) == 42
    info = await job.info()
    assert info is not None and info.args == (2,) and info.kwargs == {"b": 40}


async def test_a_failed_job_raises_its_reason_from_result(
    pool: ForgeArqRedis, redis_url: str, queue_prefix: str
) -> None:
    job = await pool.enqueue_job("greet", name="nobody")
    assert job is not None
    async with running(worker_for(redis_url, queue_prefix)):
        with pytest.raises(JobFailedError, match="nobody to greet"):
            await job.result(timeout=10)
    assert await job.status() is JobStatus.complete
    info = await job.result_info()
    assert info is not None and not info.success and info.job_try == 2


async def test_job_id_is_idempotent_as_in_arq(pool: ForgeArqRedis) -> None:
    first = await pool.enqueue_job("greet", name="a", _job_id="greet-once")
    assert first is not None and first.job_id == "greet-once"
    assert await pool.enqueue_job("greet", name="b", _job_id="greet-once") is None
    assert await pool.enqueue_job("add", 1, _job_id="greet-once") is None, "any queue's id"


async def test_defer_by_and_defer_until_delay_the_job(
    pool: ForgeArqRedis, redis_url: str, queue_prefix: str
) -> None:
    job = await pool.enqueue_job("greet", name="later", _defer_by=1.5)
    until = datetime.now(UTC) + timedelta(seconds=60)
    far = await pool.enqueue_job("greet", name="much later", _defer_until=until)
    assert job is not None and far is not None
    assert await job.status() is JobStatus.deferred
    far_info = await far.info()
    assert far_info is not None and far_info.score is not None
    assert abs(far_info.score - until.timestamp() * 1000) < 50
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with running(worker_for(redis_url, queue_prefix)):
        await job.result(timeout=10)
    assert loop.time() - started >= 1.2
    assert await far.status() is JobStatus.deferred
    with pytest.raises(RuntimeError, match="defer"):
        await pool.enqueue_job("greet", name="x", _defer_by=1, _defer_until=until)


async def test_expired_job_fails_visibly_instead_of_running(
    pool: ForgeArqRedis, redis_url: str, queue_prefix: str
) -> None:
    ctx_seen.clear()
    job = await pool.enqueue_job("greet", name="stale", _expires=0.2)
    # As arq counts it: from enqueue, so a job deferred past its expiry never runs.
    deferred = await pool.enqueue_job("greet", name="late", _defer_by=0.3, _expires=0.1)
    assert job is not None and deferred is not None
    await asyncio.sleep(0.4)
    async with running(worker_for(redis_url, queue_prefix)):
        for expired in (job, deferred):
            with pytest.raises(JobFailedError, match="expired"):
                await expired.result(timeout=10)
    assert ctx_seen == []


async def test_job_try_counts_earlier_tries(
    pool: ForgeArqRedis, redis_url: str, queue_prefix: str
) -> None:
    ctx_seen.clear()
    tried = await pool.enqueue_job("greet", name="again", _job_try=2)
    spent = await pool.enqueue_job("greet", name="too late", _job_try=3)
    assert tried is not None and spent is not None
    async with running(worker_for(redis_url, queue_prefix)):
        await tried.result(timeout=10)
        with pytest.raises(JobFailedError, match="max 2 tries exceeded"):
            await spent.result(timeout=10)
    assert [c["job_try"] for c in ctx_seen] == [2]


async def test_bad_input_is_refused_before_redis(pool: ForgeArqRedis) -> None:
    with pytest.raises(ValidationError):
        await pool.enqueue_job("greet", nom="x")
    with pytest.raises(ValidationError):
        await pool.enqueue_job("greet", name="x", _job_id="has space")
    with pytest.raises(TypeError, match="_queue_name"):
        await pool.enqueue_job("greet", name="x", _queue_name="arq:queue")
    counts = await Queue(pool, "greet", prefix=pool.queue_prefix).counts()
    assert counts[JobState.WAITING] == 0


async def test_unknown_job_is_not_found(pool: ForgeArqRedis) -> None:
    job = pool.job("nope", "greet")
    assert await job.status() is JobStatus.not_found
    assert await job.info() is None
    with pytest.raises(ResultNotFound):
        await job.result(timeout=1)


async def test_result_waits_on_events_and_gets_a_result_removed_as_it_completes(
    pool: ForgeArqRedis, redis_url: str, queue_prefix: str
) -> None:
    worker = make_worker(
        redis_url,
        [],
        prefix=queue_prefix,
        burst=False,
        functions=[func(add, name="add", max_tries=1, keep_result=0)],
    )
    job = await pool.enqueue_job("add", 20, b=1)
    assert job is not None
    # The result travels in the job's `completed` event: a poll of the job would find nothing.
    with pytest.raises(asyncio.TimeoutError):
        await job.result(timeout=0.2)
    async with running(worker):
        assert await job.result(timeout=10) == 21
    # Gone with its result, as arq's keep_result=0: nothing left to read.
    assert await job.status() is JobStatus.not_found
    with pytest.raises(ResultNotFound):
        await job.result(timeout=1)


stubborn_gate: list[asyncio.Event] = []


async def stubborn(ctx: dict[str, Any]) -> str:
    """Holds on through a cancel until the test opens the gate."""
    try:
        await stubborn_gate[0].wait()
    except asyncio.CancelledError:
        await stubborn_gate[0].wait()
    return "done anyway"


async def test_abort_waits_up_to_its_timeout_as_arq_does(
    pool: ForgeArqRedis, redis_url: str, queue_prefix: str
) -> None:
    """Past `timeout` abort raises TimeoutError (arq's `result(timeout=)`), the cancel stands:
    the job ends cancelled even though its handler returned, and a later abort says True."""
    stubborn_gate[:] = [asyncio.Event()]
    worker = make_worker(
        redis_url,
        [],
        prefix=queue_prefix,
        burst=False,
        functions=[func(stubborn, name="stubborn", max_tries=3)],
    )
    job = await pool.enqueue_job("stubborn")
    assert job is not None
    async with running(worker):
        async with asyncio.timeout(10):
            while await job.status() is not JobStatus.in_progress:
                await asyncio.sleep(0.02)
        with pytest.raises(asyncio.TimeoutError):
            await job.abort(timeout=0.3)
        stubborn_gate[0].set()
        assert await job.abort(timeout=10) is True
    info = await job.result_info()
    assert info is not None and not info.success and info.result == "cancelled"
    assert info.job_try == 1, "a cancelled job is not retried"


async def test_abort_raises_the_failure_of_a_job_that_failed_otherwise(
    pool: ForgeArqRedis, redis_url: str, queue_prefix: str
) -> None:
    """As arq, whose abort re-raises a finished job's exception from `result()`."""
    job = await pool.enqueue_job("greet", name="nobody")
    assert job is not None
    async with running(worker_for(redis_url, queue_prefix)):
        with pytest.raises(JobFailedError, match="nobody to greet"):
            await job.result(timeout=10)
    with pytest.raises(JobFailedError, match="nobody to greet"):
        await job.abort(timeout=10)
