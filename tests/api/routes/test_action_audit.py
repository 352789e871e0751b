"""Each job action and queue-wide control leaves its audit event: what was done, to which job or
queue, with the job's queue named and the change's details."""

from typing import Any

import httpx
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from redis.asyncio import Redis

QUEUE = "my-new-job"
REQUEST = {"method", "path"}
"""Metadata every event made during a request carries."""


async def _audited(redis: Redis, prefix: str) -> list[tuple[Any, ...]]:
    page = await Queue(redis, "audit-logs", prefix=prefix).get_jobs(JobState.WAITING, limit=100)
    events = sorted(page.jobs, key=lambda job: job.created_at or 0)
    return [
        (
            e.data["action"],
            e.data["resource_type"],
            e.data["resource_id"],
            e.data.get("resource_name"),
            {k: v for k, v in (e.data.get("metadata") or {}).items() if k not in REQUEST} or None,
        )
        for e in events
        if e.data["action"] != "job.enqueued"
    ]


async def test_job_actions_and_queue_controls_are_audited(
    client: httpx.AsyncClient, redis: Redis, queue_prefix: str
) -> None:
    body = {"data": {"user_id": "u", "action": "later"}, "options": {"delay": 3_600_000}}
    added = await client.post(f"/api/v1/queues/{QUEUE}/jobs", json=body)
    assert added.status_code == 202, added.text
    job = f"/api/v1/jobs/{added.json()['id']}"
    limits = {"rate_limit": None, "concurrency": 2, "per_owner": None}
    calls = [
        ("PATCH", job, {"priority": 7}),
        ("POST", f"{job}/promote", None),
        ("POST", f"{job}/cancel", None),
        ("POST", f"/api/v1/queues/{QUEUE}/pause", None),
        ("PUT", f"/api/v1/queues/{QUEUE}/limits", limits),
        ("DELETE", f"/api/v1/queues/{QUEUE}/limits", None),
        ("POST", f"/api/v1/queues/{QUEUE}/resume", None),
    ]
    for method, path, json in calls:
        response = await client.request(method, path, json=json)
        assert response.status_code in (200, 204), (path, response.text)
    job_id = added.json()["id"]
    assert await _audited(redis, queue_prefix) == [
        ("job.reprioritised", "job", job_id, QUEUE, {"priority": 7}),
        ("job.promoted", "job", job_id, QUEUE, None),
        ("job.cancelled", "job", job_id, QUEUE, None),
        ("queue.paused", "queue", QUEUE, None, None),
        ("queue.limits_set", "queue", QUEUE, None, limits),
        ("queue.limits_cleared", "queue", QUEUE, None, None),
        ("queue.resumed", "queue", QUEUE, None, None),
    ]
