"""Cron ticks and queue-health snapshots are readable by the operator (a failed tick included);
nothing can be enqueued into the cron queue, and an organisation sees none of it."""

import asyncio
from typing import Any

import httpx
from arq.cron import cron
from fastapi import FastAPI
from forgestack_db.database import Database
from forgestack_queue.queue_stats import record_snapshot
from forgestack_queue.testing import make_worker, running
from forgestack_shared.settings import Settings
from redis.asyncio import Redis

from tests.api.test_api_keys import as_key
from tests.fixtures_db import make_org_keys


async def failing_tick(ctx: dict[str, Any]) -> None:
    raise RuntimeError("nightly export broke")


async def test_operator_lists_cron_ticks_and_sees_a_failed_one(
    client: httpx.AsyncClient, settings: Settings, redis_url: str, redis: Redis
) -> None:
    worker = make_worker(
        redis_url,
        [],
        prefix=settings.queue_prefix,
        burst=False,
        cron_jobs=[cron(failing_tick, second=set(range(60)))],
    )
    async with running(worker):
        await asyncio.sleep(1.5)
    response = await client.get("/api/v1/cron/jobs", params={"state": "failed"})
    assert response.status_code == 200, response.text
    jobs = response.json()["jobs"]
    assert jobs and jobs[0]["name"] == "cron:failing_tick"
    assert jobs[0]["failed_reason"] == "RuntimeError: nightly export broke"
    one = await client.get(f"/api/v1/jobs/{jobs[0]['id']}")
    assert one.status_code == 200 and one.json()["queue"] == "cron"
    enqueue = await client.post("/api/v1/queues/cron/jobs", json={"data": {}})
    assert enqueue.status_code == 404
    await record_snapshot(redis, prefix=settings.queue_prefix)
    health = await client.get("/api/v1/cron/queue-health")
    assert health.status_code == 200
    assert health.json()[0]["queues"]["cron"]["failed"] == len(jobs)


async def test_an_organisation_key_cannot_read_the_cron_queue(
    pg_app: FastAPI, app_db: Database
) -> None:
    keys = await make_org_keys(app_db)
    async with as_key(pg_app, keys.admin) as client:
        response = await client.get("/api/v1/cron/jobs", params={"state": "failed"})
        health = await client.get("/api/v1/cron/queue-health")
    assert response.status_code == 404, response.text
    assert health.status_code == 404
    assert "jobs" not in response.json()
