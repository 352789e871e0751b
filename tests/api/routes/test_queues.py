"""Enqueueing, listing and bulk operations through HTTP against real Redis (no worker)."""

import httpx
import redis.asyncio as aioredis
from forgestack_shared.catalog import CATALOG

JOBS = "/api/v1/queues/my-new-job/jobs"
DATA = {"user_id": "u1", "action": "greet", "payload": {"n": 1}}


async def _keys(redis: aioredis.Redis, prefix: str) -> list[bytes]:
    return [key async for key in redis.scan_iter(match=f"{prefix}:*")]


async def test_list_queues_names_every_catalog_queue_with_counts(
    client: httpx.AsyncClient,
) -> None:
    await client.post(JOBS, json={"data": DATA})
    await client.post(JOBS, json={"data": DATA, "options": {"delay": 60_000}})
    response = await client.get("/api/v1/queues")
    assert response.status_code == 200
    queues = {q["name"]: q["counts"] for q in response.json()}
    assert set(queues) == {name.value for name in CATALOG}
    assert queues["my-new-job"] == {
        "waiting": 1,
        "delayed": 1,
        "active": 0,
        "completed": 0,
        "failed": 0,
    }


async def test_enqueue_answers_202_and_the_job_is_readable(client: httpx.AsyncClient) -> None:
    response = await client.post(JOBS, json={"data": DATA, "options": {"priority": 5}})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["queue"] == "my-new-job"
    assert body["state"] == "waiting"
    assert body["created"] is True

    job = (await client.get(f"/api/v1/jobs/{body['id']}")).json()
    assert job["id"] == body["id"]
    assert job["state"] == "waiting"
    assert job["data"] == DATA
    assert job["attempts_made"] == 0
    assert job["result"] is None
    assert job["failed_reason"] is None
    assert job["created_at"] is not None
    assert job["processed_at"] is None
    assert job["finished_at"] is None
    # Per-call options win; the rest come from the catalog's defaults for the queue.
    assert job["options"]["priority"] == 5
    assert job["options"]["attempts"] == CATALOG[next(iter(CATALOG))].defaults.attempts
    assert job["priority"] == 5


async def test_delayed_job_is_delayed(client: httpx.AsyncClient) -> None:
    response = await client.post(JOBS, json={"data": DATA, "options": {"delay": 60_000}})
    assert response.status_code == 202
    assert response.json()["state"] == "delayed"


async def test_unknown_queue_is_404_and_writes_nothing(
    client: httpx.AsyncClient, redis: aioredis.Redis, queue_prefix: str
) -> None:
    response = await client.post("/api/v1/queues/no-such-queue/jobs", json={"data": DATA})
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_queue"
    listing = await client.get("/api/v1/queues/no-such-queue/jobs", params={"state": "waiting"})
    assert listing.status_code == 404
    assert await _keys(redis, queue_prefix) == []


async def test_invalid_data_and_options_are_422_with_every_field(
    client: httpx.AsyncClient, redis: aioredis.Redis, queue_prefix: str
) -> None:
    response = await client.post(
        JOBS,
        json={
            "data": {"user_id": "", "payload": "not-an-object"},
            "options": {"attempts": 0, "bogus": True},
        },
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_job"
    locs = {tuple(err["loc"]) for err in response.json()["detail"]}
    assert locs == {
        ("data", "user_id"),
        ("data", "action"),
        ("data", "payload"),
        ("options", "attempts"),
        ("options", "bogus"),
    }
    assert await _keys(redis, queue_prefix) == []


async def test_malformed_body_is_422(client: httpx.AsyncClient) -> None:
    for response in (
        await client.post(JOBS, json={"options": {}}),
        await client.post(JOBS, json={"data": DATA, "extra": 1}),
        await client.post(JOBS, content=b"{not json"),
    ):
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "invalid_request"
        assert body["detail"][0]["loc"][0] == "body"
        assert "input" not in body["detail"][0]


async def test_unknown_route_has_the_same_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found", "code": "not_found"}


async def test_same_job_id_twice_returns_the_existing_job_with_200(
    client: httpx.AsyncClient,
) -> None:
    body = {"data": DATA, "options": {"job_id": "order-42-welcome"}}
    first = await client.post(JOBS, json=body)
    assert first.status_code == 202
    assert first.json()["id"] == "order-42-welcome"
    second = await client.post(JOBS, json={**body, "data": {**DATA, "action": "other"}})
    assert second.status_code == 200
    assert second.json() == {**first.json(), "created": False}
    job = (await client.get("/api/v1/jobs/order-42-welcome")).json()
    assert job["data"] == DATA
    counts = (await client.get("/api/v1/queues")).json()
    assert next(q for q in counts if q["name"] == "my-new-job")["counts"]["waiting"] == 1


async def test_bulk_enqueue_adds_all(client: httpx.AsyncClient) -> None:
    jobs = [{"data": {**DATA, "user_id": f"u{i}"}} for i in range(3)]
    jobs.append({"data": DATA, "options": {"delay": 60_000}})
    response = await client.post(f"{JOBS}:bulk", json={"jobs": jobs})
    assert response.status_code == 202, response.text
    body = response.json()
    assert [job["state"] for job in body] == ["waiting"] * 3 + ["delayed"]
    assert len({job["id"] for job in body}) == 4
    for i, job in enumerate(body[:3]):
        stored = (await client.get(f"/api/v1/jobs/{job['id']}")).json()
        assert stored["data"]["user_id"] == f"u{i}"


async def test_bulk_with_one_invalid_job_writes_nothing(
    client: httpx.AsyncClient, redis: aioredis.Redis, queue_prefix: str
) -> None:
    jobs = [{"data": DATA}, {"data": {"user_id": "u2"}}, {"data": DATA, "options": {"delay": -1}}]
    response = await client.post(f"{JOBS}:bulk", json={"jobs": jobs})
    assert response.status_code == 422
    locs = {tuple(err["loc"]) for err in response.json()["detail"]}
    assert locs == {("jobs", 1, "data", "action"), ("jobs", 2, "options", "delay")}
    assert await _keys(redis, queue_prefix) == []


async def test_bulk_size_is_bounded(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{JOBS}:bulk", json={"jobs": []})).status_code == 422
    too_many = {"jobs": [{"data": DATA}] * 1001}
    assert (await client.post(f"{JOBS}:bulk", json=too_many)).status_code == 422
    exactly_max = {"jobs": [{"data": DATA}] * 1000}
    response = await client.post(f"{JOBS}:bulk", json=exactly_max)
    assert response.status_code == 202
    assert len(response.json()) == 1000


async def test_list_jobs_paginates_in_run_order(client: httpx.AsyncClient) -> None:
    ids = []
    for i in range(5):
        response = await client.post(JOBS, json={"data": {**DATA, "user_id": f"u{i}"}})
        ids.append(response.json()["id"])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"state": "waiting", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(JOBS, params=params)).json()
        pages += 1
        assert len(page["jobs"]) <= 2
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert pages == 3


async def test_list_jobs_validates_its_parameters(client: httpx.AsyncClient) -> None:
    assert (await client.get(JOBS)).status_code == 422
    assert (await client.get(JOBS, params={"state": "sleeping"})).status_code == 422
    assert (await client.get(JOBS, params={"state": "waiting", "limit": 0})).status_code == 422
    bad_cursor = await client.get(JOBS, params={"state": "waiting", "cursor": "abc"})
    assert bad_cursor.status_code == 422


async def test_a_job_id_already_used_by_another_queue_is_409(client: httpx.AsyncClient) -> None:
    body = {"data": DATA, "options": {"job_id": "taken-id"}}
    assert (await client.post(JOBS, json=body)).status_code == 202
    email = {
        "data": {
            "to": "jane@example.com",
            "subject": "hi",
            "template": "notification",
            "variables": {"message": "m"},
        },
        "options": {"job_id": "taken-id"},
    }
    clash = await client.post("/api/v1/queues/notification-email/jobs", json=email)
    assert clash.status_code == 409, clash.text
    assert clash.json()["code"] == "job_id_in_use"


async def test_clean_removes_old_waiting_jobs(client: httpx.AsyncClient) -> None:
    first = (await client.post(JOBS, json={"data": DATA})).json()
    kept = await client.post(
        f"{JOBS[: -len('/jobs')]}/clean", json={"state": "waiting", "older_than_s": 3600}
    )
    assert kept.json() == {"removed": 0}
    cleaned = await client.post(
        f"{JOBS[: -len('/jobs')]}/clean", json={"state": "waiting", "older_than_s": 0}
    )
    assert cleaned.status_code == 200
    assert cleaned.json() == {"removed": 1}
    assert (await client.get(f"/api/v1/jobs/{first['id']}")).status_code == 404


async def test_clean_refuses_active_state(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/queues/my-new-job/clean", json={"state": "active", "older_than_s": 0}
    )
    assert response.status_code == 409


async def test_retry_failed_with_nothing_failed(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/queues/my-new-job/retry-failed")
    assert response.status_code == 200
    assert response.json() == {"retried": 0}
