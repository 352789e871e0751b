"""Jobs through the API and a real burst worker: results, failures, retry, removal, cleaning."""

import asyncio
from typing import Any

import httpx
from forgestack_queue.testing import run_burst_worker
from forgestack_worker.registry import HANDLERS

QUEUE = "/api/v1/queues/my-new-job"


async def _work(redis_url: str, prefix: str, *, max_jobs: int = 10) -> None:
    await run_burst_worker(redis_url, HANDLERS, prefix=prefix, max_jobs=max_jobs)


async def _enqueue(client: httpx.AsyncClient, action: str, **options: Any) -> str:
    data = {"user_id": "u1", "action": action, "payload": {"seconds": 1.5}}
    response = await client.post(f"{QUEUE}/jobs", json={"data": data, "options": options})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def _job(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _counts(client: httpx.AsyncClient) -> dict[str, int]:
    queues = (await client.get("/api/v1/queues")).json()
    counts: dict[str, int] = next(q for q in queues if q["name"] == "my-new-job")["counts"]
    return counts


async def test_a_job_completes_with_its_result(
    client: httpx.AsyncClient, redis_url: str, queue_prefix: str
) -> None:
    job_id = await _enqueue(client, "greet")
    await _work(redis_url, queue_prefix)
    job = await _job(client, job_id)
    assert job["state"] == "completed"
    assert job["result"]["success"] is True
    assert job["result"]["processed_at"]
    assert job["attempts_made"] == 1
    assert job["processed_at"] and job["finished_at"]
    assert job["failed_reason"] is None
    assert (await _counts(client))["completed"] == 1


async def test_a_permanent_failure_is_kept_retried_and_cleaned(
    client: httpx.AsyncClient, redis_url: str, queue_prefix: str
) -> None:
    job_id = await _enqueue(client, "fail-permanently")
    await _work(redis_url, queue_prefix)
    job = await _job(client, job_id)
    assert job["state"] == "failed"
    assert job["attempts_made"] == 1  # unrecoverable: the 3 default attempts are not used
    assert "fail-permanently" in job["failed_reason"]
    assert "UnrecoverableError" in job["stacktrace"]

    failed = (await client.get(f"{QUEUE}/jobs", params={"state": "failed"})).json()
    assert [j["id"] for j in failed["jobs"]] == [job_id]

    retried = await client.post(f"/api/v1/jobs/{job_id}/retry")
    assert retried.status_code == 200
    assert retried.json()["state"] == "waiting"
    assert retried.json()["attempts_made"] == 0
    assert (await client.post(f"/api/v1/jobs/{job_id}/retry")).status_code == 409

    await _work(redis_url, queue_prefix)
    assert (await _job(client, job_id))["state"] == "failed"
    bulk = await client.post(f"{QUEUE}/retry-failed")
    assert bulk.json() == {"retried": 1}
    await _work(redis_url, queue_prefix)

    cleaned = await client.post(f"{QUEUE}/clean", json={"state": "failed", "older_than_s": 0})
    assert cleaned.json() == {"removed": 1}
    assert (await client.get(f"/api/v1/jobs/{job_id}")).status_code == 404
    assert (await _counts(client))["failed"] == 0


async def test_transient_failures_use_every_attempt(
    client: httpx.AsyncClient, redis_url: str, queue_prefix: str
) -> None:
    job_id = await _enqueue(client, "fail", attempts=2, backoff={"type": "fixed", "delay": 0})
    await _work(redis_url, queue_prefix)
    job = await _job(client, job_id)
    assert job["state"] == "failed"
    assert job["attempts_made"] == 2
    assert "action 'fail'" in job["failed_reason"]


async def test_finished_jobs_list_newest_first_and_can_be_removed(
    client: httpx.AsyncClient, redis_url: str, queue_prefix: str
) -> None:
    ids = [await _enqueue(client, f"step-{i}") for i in range(3)]
    await _work(redis_url, queue_prefix, max_jobs=1)
    page = (await client.get(f"{QUEUE}/jobs", params={"state": "completed"})).json()
    assert [j["id"] for j in page["jobs"]] == ids[::-1]
    assert (await client.delete(f"/api/v1/jobs/{ids[0]}")).status_code == 204
    assert (await _counts(client))["completed"] == 2


async def test_an_active_job_cannot_be_removed_or_retried(
    client: httpx.AsyncClient, redis_url: str, queue_prefix: str
) -> None:
    job_id = await _enqueue(client, "sleep")
    worker = asyncio.create_task(_work(redis_url, queue_prefix))
    try:
        async with asyncio.timeout(10):
            while (await _job(client, job_id))["state"] != "active":
                await asyncio.sleep(0.02)
        assert (await _counts(client))["active"] == 1
        removal = await client.delete(f"/api/v1/jobs/{job_id}")
        assert removal.status_code == 409
        assert removal.json()["state"] == "active"
        assert (await client.post(f"/api/v1/jobs/{job_id}/retry")).status_code == 409
    finally:
        await worker
    assert (await _job(client, job_id))["state"] == "completed"


async def test_wait_answers_410_when_a_removed_jobs_result_was_too_large_to_keep(
    client: httpx.AsyncClient, redis_url: str, queue_prefix: str
) -> None:
    job_id = await _enqueue(client, "greet", remove_on_complete=True)
    waited = asyncio.create_task(
        client.get(f"/api/v1/jobs/{job_id}/wait", params={"timeout_ms": 10_000})
    )
    await asyncio.sleep(0.1)
    # A worker whose events carry at most 10 bytes of result: greet's is larger.
    await run_burst_worker(redis_url, HANDLERS, prefix=queue_prefix, events_result_max_bytes=10)
    response = await waited
    assert response.status_code == 410, response.text
    body = response.json()
    assert body["code"] == "result_too_large"
    assert "removed on completion" in body["detail"] and body["size"] > 10
