"""The routes of issue 12 (cancel, promote, priority change; pause, resume and limits): job routes
act within the caller's organisation (another organisation's key gets 404 and changes nothing),
and queue-wide controls are the operator's alone (403 for every organisation key)."""

from typing import Any

import pytest

from tests.api.routes.test_tenancy import QUEUE, World, assert_like_missing, world

__all__ = ["world"]  # the fixture, shared with the tenancy tests


async def _delayed(world: World) -> str:
    body = {"data": {"user_id": "u", "action": "later"}, "options": {"delay": 3_600_000}}
    response = await world.call("same", "POST", f"{QUEUE}/jobs", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


ACTIONS: dict[str, tuple[str, str, dict[str, Any] | None, str, dict[str, Any]]] = {
    # name: (method, path suffix, body, target job, what the owner's call leaves)
    "cancel": ("POST", "/cancel", None, "b_waiting", {"state": "failed"}),
    "promote": ("POST", "/promote", None, "delayed", {"state": "waiting"}),
    "priority": ("PATCH", "", {"priority": 7}, "b_waiting", {"priority": 7}),
}


@pytest.mark.parametrize(("caller", "status"), [("same", 200), ("other", 404), ("operator", 200)])
@pytest.mark.parametrize("action", list(ACTIONS))
async def test_job_actions_are_scoped_to_the_organisation(
    world: World, caller: str, status: int, action: str
) -> None:
    method, suffix, body, target, effect = ACTIONS[action]
    local = await _delayed(world) if target == "delayed" else getattr(world, target)
    before = (await world.b_job(local)).json()
    for job_id in world.ids_for(caller, local):
        response = await world.call(caller, method, f"/api/v1/jobs/{job_id}{suffix}", json=body)
        assert response.status_code == status, response.text
        if caller == "other":
            await assert_like_missing(world, response, job_id)
    after = (await world.b_job(local)).json()
    if caller == "other":
        assert after == before
    else:
        assert {k: after[k] for k in effect} == effect
        if action == "cancel":
            assert after["failed_reason"] == "cancelled"


async def test_job_actions_refuse_a_job_in_the_wrong_state(world: World) -> None:
    promote = await world.call("same", "POST", f"/api/v1/jobs/{world.b_waiting}/promote")
    assert promote.status_code == 409 and promote.json()["code"] == "invalid_job_state"
    cancel = await world.call("same", "POST", f"/api/v1/jobs/{world.b_failed}/cancel")
    assert cancel.status_code == 409
    bad = await world.call(
        "same", "PATCH", f"/api/v1/jobs/{world.b_waiting}", json={"priority": -1}
    )
    assert bad.status_code == 422
    member = await world.client.post(
        f"/api/v1/jobs/{world.b_waiting}/cancel",
        headers={"Authorization": f"Bearer {world.b.member}"},
    )
    assert member.status_code == 403


CONTROLS = [
    ("POST", "/pause", None),
    ("POST", "/resume", None),
    ("PUT", "/limits", {"rate_limit": {"max": 10, "duration_ms": 1000}, "concurrency": 3}),
    ("DELETE", "/limits", None),
]


@pytest.mark.parametrize(("method", "suffix", "body"), CONTROLS)
async def test_queue_controls_are_for_the_operator_only(
    world: World, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    for key in (world.b.owner, world.b.admin, world.a.admin):
        response = await world.client.request(
            method,
            f"{QUEUE}{suffix}",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 403, response.text
    queues = (await world.call("same", "GET", "/api/v1/queues")).json()
    mine = next(q for q in queues if q["name"] == "my-new-job")
    assert mine["paused"] is False and mine["limits_source"] == "catalog"


async def test_the_operator_pauses_and_limits_a_queue_and_everyone_sees_it(world: World) -> None:
    limits = {
        "rate_limit": {"max": 10, "duration_ms": 1000},
        "concurrency": 3,
        "per_owner": {"rate_limit": None, "concurrency": 1},
    }
    for method, suffix, body in [("POST", "/pause", None), ("PUT", "/limits", limits)]:
        response = await world.call("operator", method, f"{QUEUE}{suffix}", json=body)
        assert response.status_code == 204, response.text
    for caller in ("same", "other", "operator"):
        queues = (await world.call(caller, "GET", "/api/v1/queues")).json()
        mine = next(q for q in queues if q["name"] == "my-new-job")
        assert mine["paused"] is True
        assert mine["limits"] == limits and mine["limits_source"] == "operator"
    for method, suffix in [("POST", "/resume"), ("DELETE", "/limits")]:
        assert (await world.call("operator", method, f"{QUEUE}{suffix}")).status_code == 204
    queues = (await world.call("same", "GET", "/api/v1/queues")).json()
    mine = next(q for q in queues if q["name"] == "my-new-job")
    assert mine["paused"] is False and mine["limits_source"] == "catalog"
    unknown = await world.call("operator", "POST", "/api/v1/queues/nope/pause")
    assert unknown.status_code == 404
    bad = await world.call("operator", "PUT", f"{QUEUE}/limits", json={"concurrency": 0})
    assert bad.status_code == 422
