"""One request id finds both sides: the response header, the request's log lines, the job."""

import json

import httpx
from redis.asyncio import Redis

JOBS = "/api/v1/queues/my-new-job/jobs"
BODY = {"data": {"user_id": "u1", "action": "greet"}}


async def test_a_callers_request_id_is_returned_and_stored_in_the_job(
    client: httpx.AsyncClient, redis: Redis, queue_prefix: str
) -> None:
    response = await client.post(JOBS, json=BODY, headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 202
    assert response.headers["x-request-id"] == "abc-123"
    meta = await redis.hget(f"{queue_prefix}:job:{response.json()['id']}", "meta")
    assert meta is not None and json.loads(meta) == {"request_id": "abc-123"}


async def test_a_request_id_is_made_when_missing_or_unsafe(client: httpx.AsyncClient) -> None:
    made = await client.get("/api/v1/queues")
    assert len(made.headers["x-request-id"]) == 32
    unsafe = await client.get("/api/v1/queues", headers={"X-Request-ID": "a b\tc"})
    assert unsafe.headers["x-request-id"] != "a b\tc"
