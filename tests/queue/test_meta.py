"""Propagation context: stored by the producer, restored around the attempt, inherited by jobs
the attempt adds, bound on the attempt's log lines."""

from typing import Any

import pytest
from forgestack_queue.job import Job
from forgestack_queue.meta import MAX_META_BYTES, current_meta, job_meta, meta_from_json
from forgestack_queue.producer import Queue
from forgestack_queue.runner import Handler
from forgestack_queue.testing import run_burst_worker
from loguru import logger
from pydantic import BaseModel
from redis.asyncio import Redis

from tests.queue.probe import PROBE, ProbeData


class Seen(BaseModel):
    tag: str


async def test_meta_reaches_the_attempt_its_log_lines_and_the_jobs_it_adds(
    redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    seen: dict[str, Any] = {}
    lines: list[dict[str, Any]] = []
    sink = logger.add(lambda m: lines.append(dict(m.record["extra"])), level="INFO")
    child = Queue(redis, "child", prefix=queue_prefix)

    async def parent(job: Job[ProbeData]) -> None:
        seen["parent"] = dict(current_meta())
        job.logger.info("parent runs")
        await child.add({"tag": "c"})

    async def kid(job: Job[Seen]) -> None:
        seen["child"] = dict(current_meta())

    with job_meta(request_id="req-42"):
        await Queue(redis, PROBE, prefix=queue_prefix).add({"tag": "p"})
    assert current_meta() == {}
    try:
        await run_burst_worker(
            redis_url,
            [Handler(PROBE, parent, ProbeData), Handler("child", kid, Seen)],
            prefix=queue_prefix,
        )
    finally:
        logger.remove(sink)
    # Only the request id: with a tracer provider installed (another test's), a traceparent joins it.
    assert {k: m.get("request_id") for k, m in seen.items()} == {
        "parent": "req-42",
        "child": "req-42",
    }
    (line,) = [extra for extra in lines if extra.get("queue") == PROBE]
    assert line["request_id"] == "req-42" and line["attempt"] == 1


async def test_a_job_without_meta_does_not_inherit_the_context_the_worker_runs_in(
    redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    """The worker's own context (a worker started inside a request's block, as an in-process
    test might) is what attempts start from: a job added without meta still runs with none."""
    seen: dict[str, Any] = {}

    async def handle(job: Job[ProbeData]) -> None:
        seen["meta"] = dict(current_meta())

    await Queue(redis, PROBE, prefix=queue_prefix).add({"tag": "plain"})
    with job_meta(request_id="the-worker's"):
        await run_burst_worker(redis_url, [Handler(PROBE, handle, ProbeData)], prefix=queue_prefix)
    assert "request_id" not in seen["meta"]


async def test_a_job_added_without_context_has_no_meta_field(redis: Redis, queue: Queue) -> None:
    added = await queue.add({"tag": "plain"})
    assert await redis.hget(f"{queue.prefix}:job:{added.id}", "meta") is None


async def test_oversized_meta_is_dropped_rather_than_failing_the_add(
    redis: Redis, queue: Queue
) -> None:
    with job_meta(request_id="x" * MAX_META_BYTES):
        added = await queue.add({"tag": "big"})
    assert added.created


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b'{"a": 1}', None])
def test_corrupt_meta_reads_as_empty(raw: bytes | None) -> None:
    assert meta_from_json(raw) == {}
