"""`AuditRecorder.job_added_event`: the `job.enqueued` event from a validated template is the event
`event` would have made, with its own id, time and job id, for each caller and client."""

from typing import Any

import httpx
from fastapi import Request
from forgestack_api.audit import _TEMPLATES, MAX_USER_AGENT, AuditRecorder
from forgestack_api.auth import Principal, Role
from forgestack_api.queue_service import QueueService
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_shared.jobs.audit_log import AuditLogData
from redis.asyncio import Redis

JOBS = "/api/v1/queues/my-new-job/jobs"
JOB = {"data": {"user_id": "u1", "action": "greet"}}
STAMPED = ("event_id", "resource_id", "occurred_at")


async def _queued(redis: Redis, prefix: str) -> list[dict[str, Any]]:
    page = await Queue(redis, "audit-logs", prefix=prefix).get_jobs(JobState.WAITING, limit=100)
    return [job.data for job in page.jobs]


def _unstamped(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in STAMPED}


async def test_each_event_is_the_one_record_would_make(
    client: httpx.AsyncClient, redis: Redis, queue_prefix: str
) -> None:
    ids = [(await client.post(JOBS, json=JOB)).json()["id"] for _ in range(3)]
    ids.append(
        (await client.post(JOBS, json=JOB | {"options": {"job_id": "my.id-1"}})).json()["id"]
    )
    ids.append((await client.post(JOBS, json=JOB, headers={"User-Agent": "other/1"})).json()["id"])
    events = sorted(await _queued(redis, queue_prefix), key=lambda e: e["occurred_at"])
    assert [e["resource_id"] for e in events] == ids
    assert len({e["event_id"] for e in events}) == len(events)
    for event in events:
        AuditLogData.model_validate(event)
    assert {_unstamped(e)["user_agent"] for e in events} == {
        "python-httpx/" + httpx.__version__,
        "other/1",
    }
    same_client = [_unstamped(e) for e in events[:4]]
    assert same_client == [same_client[0]] * 4
    assert same_client[0] | {"user_agent": "other/1"} == _unstamped(events[4])


async def test_a_stamped_event_equals_a_freshly_built_one(redis: Redis, queue_prefix: str) -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "path": JOBS,
        "headers": [(b"user-agent", b"ua")],
        "client": ("10.0.0.7", 1234),
    }
    queues = QueueService(redis, prefix=queue_prefix)
    recorder = AuditRecorder(queues, Principal(role=Role.OPERATOR), Request(scope))
    first = recorder.job_added_event("a1", "my-new-job")
    second = recorder.job_added_event("a2", "my-new-job")
    fresh = recorder.event("job.enqueued", "job", "a2", resource_name="my-new-job")
    assert second.model_dump(exclude={"event_id", "occurred_at"}) == fresh.model_dump(
        exclude={"event_id", "occurred_at"}
    )
    assert str(second.ip_address) == "10.0.0.7" and second.user_agent == "ua"
    assert first.resource_id == "a1" and first.event_id != second.event_id
    assert first.occurred_at <= second.occurred_at
    added = [
        await queues.add_raw("my-new-job", JOB["data"], then=recorder.job_added("my-new-job"))
        for _ in range(2)
    ]
    events = await _queued(redis, queue_prefix)
    assert [e["resource_id"] for e in events] == [job.id for job in added]
    assert [_unstamped(e) for e in events] == [_unstamped(fresh.model_dump(mode="json"))] * 2


async def test_a_huge_user_agent_is_not_kept_whole(redis: Redis, queue_prefix: str) -> None:
    """The server hands over a header of any size (httptools sets no limit); kept whole in the
    templates' keys, 1,024 callers' megabyte user agents would stay in memory for good."""
    huge = "x" * 100_000
    scope = {
        "type": "http",
        "method": "POST",
        "path": JOBS,
        "headers": [(b"user-agent", huge.encode())],
        "client": ("10.0.0.8", 1234),
    }
    recorder = AuditRecorder(
        QueueService(redis, prefix=queue_prefix), Principal(role=Role.OPERATOR), Request(scope)
    )
    _TEMPLATES.clear()  # other tests' requests fill the process-wide cache with their own keys
    event = recorder.job_added_event("h1", "my-new-job")
    assert event.user_agent == huge[:MAX_USER_AGENT]
    kept = sum(len(part) for key in _TEMPLATES for part in key if isinstance(part, str))
    assert kept < 10 * MAX_USER_AGENT
