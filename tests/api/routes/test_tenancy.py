"""Every job route x (same organisation, another organisation, the operator): each job belongs to
the organisation whose key added it, another organisation's key gets 404 (as for a missing job) and
sees none of its data, and `job_id` idempotency keys are per organisation, so none can be squatted.

Organisation B owns the jobs under test; the "other" caller is organisation A's `admin` key, the
key the issue found reaching every tenant."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from forgestack_db.database import Database
from forgestack_queue.testing import run_burst_worker
from forgestack_worker.registry import HANDLERS

from tests.api.test_api_keys import OPERATOR_KEY
from tests.fixtures_db import OrgKeys, make_org_keys

QUEUE = "/api/v1/queues/my-new-job"
SECRET = "SECRET-OF-B"
RECIPIENT = "secret-b@example.com"
EMAIL = {
    "to": RECIPIENT,
    "subject": "Your invoice",
    "template": "notification",
    "variables": {"message": SECRET},
    "idempotency_key": "signup-1",
}


@dataclass
class World:
    client: httpx.AsyncClient
    a: OrgKeys
    b: OrgKeys
    b_waiting: str
    b_failed: str
    b_email: str
    a_failed: str

    def key(self, caller: str) -> str:
        return {"same": self.b.owner, "other": self.a.admin, "operator": OPERATOR_KEY}[caller]

    def ids_for(self, caller: str, local_id: str) -> list[str]:
        """The ids a caller may name B's job by: B's own, the operator's namespaced full id, and
        for another organisation both (the second is how an unscoped handle would reach it)."""
        full = f"{self.b.org_id}~{local_id}"
        return {"same": [local_id], "operator": [full], "other": [local_id, full]}[caller]

    async def call(self, caller: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key(caller)}"}
        return await self.client.request(method, url, headers=headers, **kwargs)

    async def b_job(self, local_id: str) -> httpx.Response:
        return await self.call("same", "GET", f"/api/v1/jobs/{local_id}")


async def _add(world: World, caller: str, action: str, **options: Any) -> str:
    data = {
        "user_id": "u",
        "action": action,
        "payload": {"note": SECRET if caller == "same" else ""},
    }
    response = await world.call(
        caller, "POST", f"{QUEUE}/jobs", json={"data": data, "options": options}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


@pytest.fixture
async def world(
    pg_app: FastAPI, app_db: Database, redis_url: str, queue_prefix: str
) -> AsyncIterator[World]:
    """B: a failed job, a waiting one (job_id `shared-key`) and an email; A: a failed job."""
    a, b = await make_org_keys(app_db), await make_org_keys(app_db)
    transport = httpx.ASGITransport(app=pg_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        w = World(client, a, b, "", "", "", "")
        w.b_failed = await _add(w, "same", "fail-permanently")
        w.a_failed = await _add(w, "other", "fail-permanently")
        my_new_job = [h for h in HANDLERS if h.queue == "my-new-job"]
        await run_burst_worker(redis_url, my_new_job, prefix=queue_prefix)
        w.b_waiting = await _add(w, "same", "greet", job_id="shared-key")
        email = await w.call("same", "POST", "/api/v1/notifications/email", json=EMAIL)
        assert email.status_code == 202, email.text
        w.b_email = email.json()["id"]
        yield w


def assert_nothing_of_b(world: World, response: httpx.Response) -> None:
    for secret in (SECRET, RECIPIENT, str(world.b.org_id)):
        assert secret not in response.text, (secret, response.text)


async def assert_like_missing(world: World, response: httpx.Response, named: str) -> None:
    """The same answer, byte for byte, as for an id nobody ever used (the id echoed is the one the
    caller sent, nothing else)."""
    assert response.status_code == 404, response.text
    assert response.json() == {"detail": f"job {named!r} not found", "code": "job_not_found"}
    assert_nothing_of_b(world, httpx.Response(404, text=response.text.replace(named, "")))


@pytest.mark.parametrize(("caller", "status"), [("same", 200), ("other", 404), ("operator", 200)])
@pytest.mark.parametrize("job", ["b_waiting", "b_failed", "b_email"])
async def test_get_a_job(world: World, caller: str, status: int, job: str) -> None:
    for job_id in world.ids_for(caller, getattr(world, job)):
        response = await world.call(caller, "GET", f"/api/v1/jobs/{job_id}")
        assert response.status_code == status, response.text
        if caller == "other":
            await assert_like_missing(world, response, job_id)
        else:
            assert response.json()["owner"] == str(world.b.org_id)


async def test_b_cannot_name_its_own_job_by_the_namespaced_id_either(world: World) -> None:
    namespaced = f"{world.b.org_id}~{world.b_waiting}"
    response = await world.call("same", "GET", f"/api/v1/jobs/{namespaced}")
    await assert_like_missing(world, response, namespaced)


@pytest.mark.parametrize(("caller", "status"), [("same", 200), ("other", 404), ("operator", 200)])
async def test_retry_a_failed_job(world: World, caller: str, status: int) -> None:
    for job_id in world.ids_for(caller, world.b_failed):
        response = await world.call(caller, "POST", f"/api/v1/jobs/{job_id}/retry")
        assert response.status_code == status, response.text
        if caller == "other":
            await assert_like_missing(world, response, job_id)
    state = (await world.b_job(world.b_failed)).json()["state"]
    assert state == ("failed" if caller == "other" else "waiting")


@pytest.mark.parametrize(("caller", "status"), [("same", 204), ("other", 404), ("operator", 204)])
async def test_remove_a_job(world: World, caller: str, status: int) -> None:
    for job_id in world.ids_for(caller, world.b_waiting):
        response = await world.call(caller, "DELETE", f"/api/v1/jobs/{job_id}")
        assert response.status_code == status, response.text
        if caller == "other":
            await assert_like_missing(world, response, job_id)
    still_there = (await world.b_job(world.b_waiting)).status_code == 200
    assert still_there is (caller == "other")


@pytest.mark.parametrize("caller", ["same", "other", "operator"])
@pytest.mark.parametrize(
    ("queue", "state"),
    [
        ("my-new-job", "waiting"),
        ("my-new-job", "failed"),
        ("notification-email", "waiting"),
        ("audit-logs", "waiting"),
    ],
)
async def test_list_a_queue(world: World, caller: str, queue: str, state: str) -> None:
    url = f"/api/v1/queues/{queue}/jobs"
    response = await world.call(caller, "GET", url, params={"state": state})
    assert response.status_code == 200, response.text
    owners = {job["owner"] for job in response.json()["jobs"]}
    if caller == "same":
        assert owners == {str(world.b.org_id)}
    elif caller == "other":
        assert owners <= {str(world.a.org_id)}
        assert_nothing_of_b(world, response)
    else:
        assert str(world.b.org_id) in owners


@pytest.mark.parametrize("caller", ["same", "other", "operator"])
async def test_counts(world: World, caller: str) -> None:
    response = await world.call(caller, "GET", "/api/v1/queues")
    assert response.status_code == 200
    counts = {q["name"]: q["counts"] for q in response.json()}
    mine = counts["my-new-job"]
    expected = {
        "same": {"waiting": 1, "failed": 1},
        "other": {"waiting": 0, "failed": 1},
        "operator": {"waiting": 1, "failed": 2},
    }[caller]
    assert {k: mine[k] for k in expected} == expected
    assert counts["notification-email"]["waiting"] == (0 if caller == "other" else 1)
    assert_nothing_of_b(world, response)


@pytest.mark.parametrize(
    ("caller", "status", "created"),
    [("same", 200, False), ("other", 202, True), ("operator", 202, True)],
)
async def test_job_ids_are_per_organisation_and_cannot_be_squatted(
    world: World, caller: str, status: int, created: bool
) -> None:
    body = {"data": {"user_id": "u", "action": "greet"}, "options": {"job_id": "shared-key"}}
    response = await world.call(caller, "POST", f"{QUEUE}/jobs", json=body)
    assert response.status_code == status, response.text
    assert response.json()["created"] is created
    assert response.json()["id"] == "shared-key"
    bulk = await world.call(caller, "POST", f"{QUEUE}/jobs:bulk", json={"jobs": [body]})
    assert bulk.status_code == 202
    assert bulk.json()[0]["created"] is False  # the single add above made it for everyone
    if caller != "same":
        assert_nothing_of_b(world, response)
        b_job = (await world.b_job("shared-key")).json()
        assert b_job["data"]["payload"] == {"note": SECRET}


async def test_bulk_add_is_owned_by_the_caller(world: World) -> None:
    body = {"data": {"user_id": "u", "action": "greet"}, "options": {"job_id": "bulk-key"}}
    response = await world.call("other", "POST", f"{QUEUE}/jobs:bulk", json={"jobs": [body]})
    assert response.status_code == 202
    assert (await world.b_job("bulk-key")).status_code == 404
    mine = await world.call("other", "GET", "/api/v1/jobs/bulk-key")
    assert mine.json()["owner"] == str(world.a.org_id)


@pytest.mark.parametrize(("caller", "retried"), [("same", 1), ("other", 1), ("operator", 2)])
async def test_retry_failed_acts_on_the_callers_jobs(
    world: World, caller: str, retried: int
) -> None:
    response = await world.call(caller, "POST", f"{QUEUE}/retry-failed")
    assert response.status_code == 200
    assert response.json() == {"retried": retried}
    b_state = (await world.b_job(world.b_failed)).json()["state"]
    assert b_state == ("failed" if caller == "other" else "waiting")


@pytest.mark.parametrize(("caller", "removed"), [("same", 1), ("other", 0), ("operator", 1)])
async def test_clean_acts_on_the_callers_jobs(world: World, caller: str, removed: int) -> None:
    body = {"state": "waiting", "older_than_s": 0}
    response = await world.call(caller, "POST", f"{QUEUE}/clean", json=body)
    assert response.status_code == 200
    assert response.json() == {"removed": removed}
    still_there = (await world.b_job(world.b_waiting)).status_code == 200
    assert still_there is (caller == "other")


@pytest.mark.parametrize(("caller", "status"), [("same", 200), ("other", 202), ("operator", 202)])
async def test_email_idempotency_keys_cannot_be_squatted(
    world: World, caller: str, status: int
) -> None:
    response = await world.call(caller, "POST", "/api/v1/notifications/email", json=EMAIL)
    assert response.status_code == status, response.text
    if caller == "same":
        assert response.json()["id"] == world.b_email
    else:
        assert_nothing_of_b(world, response)


async def test_an_email_idempotency_key_taken_first_by_another_org_blocks_nothing(
    world: World,
) -> None:
    """The issue's squatting attack: A adds a raw job under the id B's email key maps to."""
    squat = {
        "data": {k: v for k, v in EMAIL.items() if k != "idempotency_key"},
        "options": {"job_id": "notification-email:signup-2"},
    }
    taken = await world.call("other", "POST", "/api/v1/queues/notification-email/jobs", json=squat)
    assert taken.status_code == 202, taken.text
    mine = await world.call(
        "same", "POST", "/api/v1/notifications/email", json=EMAIL | {"idempotency_key": "signup-2"}
    )
    assert mine.status_code == 202, mine.text
    assert mine.json()["created"] is True
    job = (await world.b_job(mine.json()["id"])).json()
    assert job["owner"] == str(world.b.org_id)


@pytest.mark.parametrize("caller", ["same", "other", "operator"])
async def test_recorded_audit_events_are_queued_for_the_callers_organisation(
    world: World, caller: str
) -> None:
    event = {"action": "project.renamed", "resource_type": "project"}
    recorded = await world.call(caller, "POST", "/api/v1/audit-logs", json=event)
    assert recorded.status_code == 202
    listing = await world.call(
        caller, "GET", "/api/v1/queues/audit-logs/jobs", params={"state": "waiting", "limit": 1000}
    )
    event_ids = {job["data"]["event_id"]: job["owner"] for job in listing.json()["jobs"]}
    owner = {"same": str(world.b.org_id), "other": str(world.a.org_id), "operator": None}[caller]
    assert event_ids[recorded.json()["event_id"]] == owner
    if caller == "other":
        assert_nothing_of_b(world, listing)


async def test_the_owner_cannot_be_given_in_the_body(world: World) -> None:
    body = {"data": {"user_id": "u", "action": "greet"}, "owner": str(world.b.org_id)}
    response = await world.call("other", "POST", f"{QUEUE}/jobs", json=body)
    assert response.status_code == 422  # no such field: the owner comes from the key alone
