"""Single-job routes without a worker: reading, removing, and retry's state check."""

import httpx

JOBS = "/api/v1/queues/my-new-job/jobs"
DATA = {"user_id": "u1", "action": "greet"}


async def _enqueue(client: httpx.AsyncClient, **options: object) -> str:
    response = await client.post(JOBS, json={"data": DATA, "options": options})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def test_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/api/v1/jobs/nope"),
        await client.post("/api/v1/jobs/nope/retry"),
        await client.delete("/api/v1/jobs/nope"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "job_not_found"


async def test_retry_of_a_waiting_job_is_409(client: httpx.AsyncClient) -> None:
    job_id = await _enqueue(client)
    response = await client.post(f"/api/v1/jobs/{job_id}/retry")
    assert response.status_code == 409
    assert response.json()["state"] == "waiting"


async def test_delete_removes_waiting_and_delayed_jobs(client: httpx.AsyncClient) -> None:
    waiting = await _enqueue(client)
    delayed = await _enqueue(client, delay=60_000)
    for job_id in (waiting, delayed):
        response = await client.delete(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 204
        assert (await client.get(f"/api/v1/jobs/{job_id}")).status_code == 404
    counts = (await client.get("/api/v1/queues")).json()
    mine = next(q for q in counts if q["name"] == "my-new-job")["counts"]
    assert mine["waiting"] == mine["delayed"] == 0


async def test_jobs_of_one_test_prefix_are_invisible_to_another(
    client: httpx.AsyncClient,
) -> None:
    """Ids are looked up under the configured QUEUE_PREFIX only."""
    job_id = await _enqueue(client)
    assert (await client.get(f"/api/v1/jobs/{job_id}")).status_code == 200
    assert (await client.get(f"/api/v1/jobs/{job_id}x")).status_code == 404
