"""Reads survive bad records, and options out of range never make one: a corrupt finished job shows
as corrupt in its page (200), and out-of-range options are a 422 that writes nothing."""

from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from forgestack_db.database import Database
from forgestack_queue.keys import job_key_prefix
from forgestack_queue.testing import run_burst_worker
from forgestack_worker.registry import HANDLERS

from tests.api.test_api_keys import as_key
from tests.fixtures_db import make_org_keys

QUEUE = "/api/v1/queues/my-new-job"
DATA = {"user_id": "u1", "action": "greet"}
HUGE = 300_000_000_000_000


async def _snapshot(redis: aioredis.Redis, prefix: str) -> dict[bytes, bytes]:
    """Every key of the test with its type: a 4xx must leave this exactly as it was."""
    return {key: await redis.type(key) async for key in redis.scan_iter(match=f"{prefix}:*")}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"delay": HUGE}, "delay"),
        ({"timeout": HUGE}, "timeout"),
        ({"priority": HUGE}, "priority"),
        ({"backoff": {"type": "fixed", "delay": HUGE}}, "backoff"),
        ({"backoff": {"schedule": [1000, HUGE]}}, "backoff"),
        ({"remove_on_complete": {"age": HUGE}}, "remove_on_complete"),
        ({"remove_on_fail": HUGE}, "remove_on_fail"),
    ],
)
async def test_out_of_range_options_are_422_and_write_nothing(
    client: httpx.AsyncClient,
    redis: aioredis.Redis,
    queue_prefix: str,
    options: dict[str, Any],
    field: str,
) -> None:
    await client.post(f"{QUEUE}/jobs", json={"data": DATA})
    before = await _snapshot(redis, queue_prefix)
    counts_before = (await client.get("/api/v1/queues")).json()
    for response in (
        await client.post(f"{QUEUE}/jobs", json={"data": DATA, "options": options}),
        await client.post(
            f"{QUEUE}/jobs:bulk",
            json={"jobs": [{"data": DATA}, {"data": DATA, "options": options}]},
        ),
    ):
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_job"
        locs = [err["loc"] for err in response.json()["detail"]]
        assert any(field in loc for loc in locs), locs
    assert await _snapshot(redis, queue_prefix) == before
    assert (await client.get("/api/v1/queues")).json() == counts_before


async def test_a_corrupt_completed_record_shows_as_corrupt_and_the_page_answers(
    client: httpx.AsyncClient, redis: aioredis.Redis, redis_url: str, queue_prefix: str
) -> None:
    ids = [(await client.post(f"{QUEUE}/jobs", json={"data": DATA})).json()["id"] for _ in range(3)]
    my_new_job = [h for h in HANDLERS if h.queue == "my-new-job"]
    await run_burst_worker(redis_url, my_new_job, prefix=queue_prefix)
    broken, partial = ids[0], ids[1]
    await redis.delete(job_key_prefix(queue_prefix) + broken)
    await redis.set(job_key_prefix(queue_prefix) + broken, "not a record")
    await redis.hset(job_key_prefix(queue_prefix) + partial, "finished_at", str(HUGE * 1000))

    page = await client.get(f"{QUEUE}/jobs", params={"state": "completed"})

    assert page.status_code == 200, page.text
    jobs = {job["id"]: job for job in page.json()["jobs"]}
    assert set(jobs) == set(ids)
    assert jobs[broken]["corrupt"]
    assert jobs[partial]["corrupt"]
    assert jobs[ids[2]]["corrupt"] is None
    assert jobs[ids[2]]["state"] == "completed"
    for job_id in (broken, partial):
        single = await client.get(f"/api/v1/jobs/{job_id}")
        assert single.status_code == 200, single.text
        assert single.json()["corrupt"]


async def test_a_delayed_job_due_past_year_9999_does_not_hide_the_others(
    client: httpx.AsyncClient, redis: aioredis.Redis, queue_prefix: str
) -> None:
    """The issue's `delay` of 3e14 ms, as a record written before options were bounded."""
    ids = [
        (
            await client.post(f"{QUEUE}/jobs", json={"data": DATA, "options": {"delay": 60_000}})
        ).json()["id"]
        for _ in range(2)
    ]
    await redis.hset(job_key_prefix(queue_prefix) + ids[0], "delay_until", str(HUGE * 1000))
    page = await client.get(f"{QUEUE}/jobs", params={"state": "delayed"})
    assert page.status_code == 200, page.text
    jobs = {job["id"]: job for job in page.json()["jobs"]}
    assert "delay_until" in jobs[ids[0]]["corrupt"]
    assert jobs[ids[1]]["corrupt"] is None
    assert (await client.get(f"/api/v1/jobs/{ids[0]}")).status_code == 200


async def test_an_organisations_corrupt_record_shows_to_it_as_corrupt(
    pg_app: FastAPI, app_db: Database, redis: aioredis.Redis, queue_prefix: str
) -> None:
    keys = await make_org_keys(app_db)
    async with as_key(pg_app, keys.owner) as owner:
        job_id = (await owner.post(f"{QUEUE}/jobs", json={"data": DATA})).json()["id"]
        stored = job_key_prefix(queue_prefix) + f"{keys.org_id}~{job_id}"
        assert await redis.exists(stored)
        await redis.hset(stored, "opts", "{not json")
        page = await owner.get(f"{QUEUE}/jobs", params={"state": "waiting"})
        assert page.status_code == 200
        (job,) = page.json()["jobs"]
        assert (job["id"], job["owner"]) == (job_id, str(keys.org_id))
        assert job["corrupt"]


@pytest.mark.parametrize("cursor", ["9" * 19, "9223372036854775807", "9" * 20])
async def test_a_cursor_past_redis_integers_is_422_not_500(
    client: httpx.AsyncClient, cursor: str
) -> None:
    """Redis ranks are signed 64-bit: a 19- or 20-digit cursor (plus the limit) overflows them."""
    for state in ("waiting", "completed"):
        response = await client.get(
            f"{QUEUE}/jobs", params={"state": state, "cursor": cursor, "limit": 1000}
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_request"


async def test_the_longest_cursor_accepted_answers_an_empty_page(client: httpx.AsyncClient) -> None:
    response = await client.get(
        f"{QUEUE}/jobs", params={"state": "completed", "cursor": "9" * 18, "limit": 1000}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"jobs": [], "next_cursor": None}


@pytest.mark.parametrize("damage", ["a string", "no queue field", "a queue name with a colon"])
async def test_retrying_or_removing_a_record_that_names_no_usable_queue_is_409(
    pg_app: FastAPI, app_db: Database, redis: aioredis.Redis, queue_prefix: str, damage: str
) -> None:
    keys = await make_org_keys(app_db)
    async with as_key(pg_app, keys.owner) as owner:
        job_id = (await owner.post(f"{QUEUE}/jobs", json={"data": DATA})).json()["id"]
        stored = job_key_prefix(queue_prefix) + f"{keys.org_id}~{job_id}"
        if damage == "a string":
            await redis.delete(stored)
            await redis.set(stored, "not a record")
        elif damage == "no queue field":
            await redis.hdel(stored, "queue")
        else:
            await redis.hset(stored, "queue", "gone:queue")
        assert (await owner.get(f"/api/v1/jobs/{job_id}")).json()["corrupt"] or damage.endswith(
            "colon"
        )
        for response in (
            await owner.post(f"/api/v1/jobs/{job_id}/retry"),
            await owner.delete(f"/api/v1/jobs/{job_id}"),
        ):
            assert response.status_code == 409, response.text
            assert response.json()["code"] == "invalid_job_state"
            assert response.json()["state"] == "corrupt"
