"""`GET /metrics` after a known sequence of jobs run by two worker processes' worth of workers:
their counts add up in Redis, and the API renders them with depth and live workers."""

import asyncio

import httpx
import pytest
from arq.worker import func
from fastapi import FastAPI
from forgestack_db.database import Database
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.runner import Handler
from forgestack_queue.testing import make_worker, running
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from tests.api.conftest import ADMIN_KEY
from tests.fixtures_db import make_org_keys
from tests.queue.probe import PROBE, Probe, ProbeData

SECRET_DATA = "s3cr3t-in-the-payload"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_counts_of_two_workers_add_up(
    client: httpx.AsyncClient, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    queue = Queue(redis, PROBE, prefix=queue_prefix)
    retry_twice = JobOptions(attempts=3)
    jobs = [(ProbeData(tag=f"ok{i}", mode="ok", seconds=0), None) for i in range(6)]
    jobs += [(ProbeData(tag=f"bad{i}", mode="unrecoverable"), None) for i in range(2)]
    jobs += [(ProbeData(tag=f"flaky{i}", mode="fail-until-2"), retry_twice) for i in range(2)]
    await queue.add_bulk([(data.model_dump(), opts) for data, opts in jobs])
    await queue.add({"tag": "again"}, JobOptions(job_id="ok-again"))
    await queue.add({"tag": "again"}, JobOptions(job_id="ok-again"))  # idempotent: not counted
    probe = Probe()
    workers = [
        make_worker(redis_url, [Handler(PROBE, probe.handle, ProbeData)], prefix=queue_prefix)
        for _ in range(2)
    ]
    await asyncio.gather(*(w.async_run() for w in workers))
    for worker in workers:
        await worker.close()
    assert {w.worker_id for w in workers} and len(probe.runs) == 13  # 11 jobs, 2 retries

    text = (await client.get("/metrics")).text
    got = _samples(text)
    q = (("queue", PROBE),)
    assert got[("forgestack_jobs_added_total", q)] == 11
    assert got[("forgestack_jobs_completed_total", q)] == 9
    assert got[("forgestack_jobs_failed_total", q)] == 2
    assert got[("forgestack_jobs_retried_total", q)] == 2
    assert got[("forgestack_job_duration_seconds_count", q)] == 13
    assert got[("forgestack_job_wait_seconds_count", q)] == 11
    inf = (("le", "+Inf"), ("queue", PROBE))
    assert got[("forgestack_job_duration_seconds_bucket", inf)] == 13
    assert got[("forgestack_queue_jobs", (("queue", PROBE), ("state", "completed")))] == 9
    assert got[("forgestack_queue_jobs", (("queue", PROBE), ("state", "failed")))] == 2
    assert got[("forgestack_queue_jobs", (("queue", "my-new-job"), ("state", "waiting")))] == 0
    # Both workers left the registry when they stopped.
    assert got[("forgestack_workers_live", ())] == 0


async def test_live_workers_are_the_worker_registry(
    client: httpx.AsyncClient, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    """/metrics and GET /api/v1/workers read the same registry: two running workers (one serving
    the probe queue too) count in both, and a stopped one leaves both at once."""
    probe = Probe()
    both = make_worker(
        redis_url, [Handler(PROBE, probe.handle, ProbeData)], prefix=queue_prefix, burst=False
    )
    other = make_worker(redis_url, [], prefix=queue_prefix, burst=False, functions=[func(_noop)])

    async def agree(expected: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        for _ in range(200):  # a worker registers on its first loop turn
            listed = (await client.get("/api/v1/workers")).json()
            got = _samples((await client.get("/metrics")).text)
            if len(listed) == expected:
                break
            await asyncio.sleep(0.05)
        assert len(listed) == expected == got[("forgestack_workers_live", ())]
        return got

    async with running(both, other):
        got = await agree(2)
        assert got[("forgestack_queue_workers", (("queue", PROBE),))] == 1
        assert got[("forgestack_queue_workers", (("queue", "_noop"),))] == 1
        assert got[("forgestack_queue_workers", (("queue", "my-new-job"),))] == 0
    await agree(0)


async def test_http_metrics_never_label_a_raw_path(client: httpx.AsyncClient) -> None:
    await client.get(f"/api/v1/jobs/{SECRET_DATA}")
    got = _samples((await client.get("/metrics")).text)
    route = (("method", "GET"), ("route", "/api/v1/jobs/{job_id}"), ("status", "404"))
    assert got[("forgestack_http_requests_total", route)] >= 1
    assert not any(SECRET_DATA in str(labels) for _, labels in got)


async def _noop(ctx: dict[str, object]) -> None:
    return None


@pytest.mark.parametrize("key", [None, "wrong"])
async def test_metrics_need_the_operator_key(anon: httpx.AsyncClient, key: str | None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = await anon.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    ok = await anon.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert ok.status_code == 200


async def test_an_organisations_key_gets_403_and_sees_nothing(
    pg_app: FastAPI, app_db: Database
) -> None:
    """Metrics span every organisation's jobs: even an organisation's admin key is refused."""
    keys = await make_org_keys(app_db)
    transport = httpx.ASGITransport(app=pg_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        for key in (keys.admin, keys.owner, keys.member):
            response = await client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 403
            assert "forgestack_" not in response.text
