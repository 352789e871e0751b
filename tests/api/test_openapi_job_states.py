"""Job answers typed per state in the OpenAPI document: `Job` is a union discriminated by
`state`, every job answer points at it, and real records (read through the API in each state,
from a real worker) match their own state's variant and no other; a corrupt record still fits,
a sound one missing its state's field does not."""

import asyncio
from typing import Any

import httpx
import pytest
from forgestack_api.openapi_jobs import example, variant_name
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, running
from forgestack_worker.registry import HANDLERS
from jsonschema import Draft202012Validator
from redis.asyncio import Redis

from tests.queue.probe import PROBE, Probe, ProbeData

JOB = {"$ref": "#/components/schemas/Job"}


@pytest.fixture
async def document(anon: httpx.AsyncClient) -> dict[str, Any]:
    doc: dict[str, Any] = (await anon.get("/openapi.json")).json()
    return doc


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    root = schema | {"components": document["components"]}
    return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _variants_matching(document: dict[str, Any], record: dict[str, Any]) -> list[str]:
    return [
        variant_name(state)
        for state in JobState
        if _validator(document, {"$ref": f"#/components/schemas/{variant_name(state)}"}).is_valid(
            record
        )
    ]


async def test_every_job_answer_is_the_union_discriminated_by_state(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    union = schemas["Job"]
    assert union["discriminator"]["propertyName"] == "state"
    assert set(union["discriminator"]["mapping"]) == {s.value for s in JobState}
    ok = document["paths"]["/api/v1/jobs/{job_id}"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == JOB
    assert schemas["JobPage"]["properties"]["jobs"]["items"] == JOB
    assert JOB in schemas["JobWaitResult"]["properties"]["job"]["anyOf"]
    outside = {k: v for k, v in document.items() if k != "components"}
    assert "schemas/JobRecord" not in str(outside)
    for state in JobState:
        variant = schemas[variant_name(state)]
        (shown,) = variant["examples"]
        assert _variants_matching(document, shown) == [variant_name(state)]
        assert _validator(document, JOB).is_valid(shown)


async def test_real_records_match_their_own_states_variant(
    client: httpx.AsyncClient,
    document: dict[str, Any],
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
) -> None:
    queue = Queue(redis, PROBE, prefix=queue_prefix)
    probe = Probe()
    greet = next(h for h in HANDLERS if h.queue == "my-new-job")
    worker = make_worker(redis_url, [probe.handler(), greet], prefix=queue_prefix, burst=False)
    waiting = await queue.add(ProbeData(tag="w").model_dump())
    delayed = await queue.add(ProbeData(tag="d").model_dump(), JobOptions(delay=60_000))
    cancelled = await queue.add(ProbeData(tag="c").model_dump(), JobOptions(delay=60_000))
    await queue.cancel(cancelled.id)
    seen: dict[str, dict[str, Any]] = {
        "waiting": (await client.get(f"/api/v1/jobs/{waiting.id}")).json(),
        "delayed": (await client.get(f"/api/v1/jobs/{delayed.id}")).json(),
        "failed (cancelled while delayed)": (
            await client.get(f"/api/v1/jobs/{cancelled.id}")
        ).json(),
    }
    await queue.remove(waiting.id)
    slow = await queue.add(ProbeData(tag="s", mode="sleep", seconds=30).model_dump())
    done = await queue.add(ProbeData(tag="ok", mode="report").model_dump())
    bad = await queue.add(ProbeData(tag="bad", mode="unrecoverable").model_dump())
    greeted = await client.post(
        "/api/v1/queues/my-new-job/jobs", json={"data": {"user_id": "u", "action": "greet"}}
    )
    async with running(worker):
        await asyncio.wait_for(probe.started.wait(), 10)
        for job_id in (done.id, bad.id, greeted.json()["id"]):
            waited = await client.get(f"/api/v1/jobs/{job_id}/wait", params={"timeout_ms": 10_000})
            seen[f"waited {job_id}"] = waited.json()["job"]
        seen["active"] = (await client.get(f"/api/v1/jobs/{slow.id}")).json()
        await queue.cancel(slow.id)
    listed = (
        await client.get("/api/v1/queues/my-new-job/jobs", params={"state": "completed"})
    ).json()
    assert len(listed["jobs"]) == 1, (listed, greeted.text)
    seen["listed completed"] = listed["jobs"][0]
    assert {r["state"] for r in seen.values()} == {s.value for s in JobState}
    union = _validator(document, JOB)
    for what, record in seen.items():
        assert record["corrupt"] is None
        assert union.is_valid(record), (what, list(union.iter_errors(record)))
        assert _variants_matching(document, record) == [variant_name(JobState(record["state"]))]

    # The guarantee bites: a sound completed record without `finished_at` is not a Job...
    broken = seen["listed completed"] | {"finished_at": None}
    assert not union.is_valid(broken)
    # ...while a record the reader flags corrupt may lack it.
    assert union.is_valid(broken | {"corrupt": "finished_at is not a timestamp"})
    assert example(JobState.COMPLETED)["finished_at"] is not None
