"""The live stream over a real connection: it needs a session, carries the caller's own counts and
a job's state, and for another organisation's job says only `missing`."""

import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.api.dashboard.live import LiveApi


def _signed_in(live: LiveApi, key: str) -> httpx.Client:
    client = httpx.Client(base_url=live.base_url, timeout=10)
    form = client.get("/dashboard/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert token
    client.post("/dashboard/login", data={"api_key": key, "login_token": token.group(1)})
    return client


def _first_events(client: httpx.Client, path: str) -> dict[str, object]:
    events: dict[str, object] = {}
    with client.stream("GET", path) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events[name] = json.loads(line.removeprefix("data: "))
            if {"overview", "job"} <= events.keys():
                break
    return events


def test_the_stream_is_scoped_to_the_session(live_api: LiveApi) -> None:
    live = live_api
    added = httpx.post(
        f"{live.base_url}/api/v1/queues/my-new-job/jobs",
        json={"data": {"user_id": "u", "action": "greet", "payload": {"token": "tk-a-1"}}},
        headers={"Authorization": f"Bearer {live.a.owner}"},
    )
    a_job = added.json()["id"]

    anonymous = httpx.get(f"{live.base_url}/dashboard/events", follow_redirects=False)
    assert anonymous.status_code == 303

    a = _signed_in(live, live.a.owner)
    try:
        events = _first_events(a, f"/dashboard/events?job={a_job}")
    finally:
        a.close()
    job = events["job"]
    assert isinstance(job, dict) and job["state"] == "waiting"
    assert "tk-a-1" not in job["html"] and "(redacted)" in job["html"]
    overview = {q["name"]: q for q in events["overview"]}  # type: ignore[attr-defined]
    assert overview["my-new-job"]["counts"]["waiting"] == 1

    b = _signed_in(live, live.b.owner)
    try:
        events = _first_events(b, f"/dashboard/events?job={a_job}")
    finally:
        b.close()
    assert events["job"] == {"state": "missing", "html": ""}
    overview = {q["name"]: q for q in events["overview"]}  # type: ignore[attr-defined]
    assert overview["my-new-job"]["counts"]["waiting"] == 0


def _read_until(
    client: httpx.Client, path: str, ready: threading.Event, done: Callable[[str, Any], bool]
) -> list[tuple[str, Any]]:
    """Every (event, data) of the stream up to and including the one `done` accepts."""
    seen: list[tuple[str, Any]] = []
    with client.stream("GET", path, timeout=httpx.Timeout(10, read=60)) as response:
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                seen.append((name, json.loads(line.removeprefix("data: "))))
                ready.set()
                if done(*seen[-1]):
                    break
    return seen


def _counts(data: Any, queue: str = "my-new-job") -> dict[str, int] | None:
    return next((q["counts"] for q in data if q["name"] == queue), None)


def test_another_organisations_events_neither_push_nor_show(live_api: LiveApi) -> None:
    """B's page (following A's job id) stays open while A's job runs and completes: nothing B is
    sent carries A's id or counts A's job, and no job push comes; B's own job, added after, is
    pushed at once (the stream was live throughout)."""
    live = live_api
    a_job = httpx.post(
        f"{live.base_url}/api/v1/queues/my-new-job/jobs",
        json={"data": {"user_id": "u", "action": "greet"}},
        headers={"Authorization": f"Bearer {live.a.owner}"},
    ).json()["id"]
    b = _signed_in(live, live.b.owner)
    ready = threading.Event()

    def own_job_seen(name: str, data: Any) -> bool:
        counts = _counts(data) if name == "overview" else None
        return counts is not None and counts["waiting"] == 1

    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(_read_until, b, f"/dashboard/events?job={a_job}", ready, own_job_seen)
        assert ready.wait(20)
        live.work().join(timeout=30)
        assert (
            httpx.get(
                f"{live.base_url}/api/v1/jobs/{a_job}",
                headers={"Authorization": f"Bearer {live.a.owner}"},
            ).json()["state"]
            == "completed"
        )
        b_job = httpx.post(
            f"{live.base_url}/api/v1/queues/my-new-job/jobs",
            json={"data": {"user_id": "u", "action": "greet"}},
            headers={"Authorization": f"Bearer {live.b.owner}"},
        ).json()["id"]
        seen = reading.result(timeout=60)
    b.close()
    assert a_job not in json.dumps(seen) and b_job not in json.dumps(seen)
    assert [data for name, data in seen if name == "job"] == [{"state": "missing", "html": ""}]
    counts = [c for name, data in seen if name == "overview" and (c := _counts(data))]
    assert all(c["completed"] == 0 and c["active"] == 0 for c in counts), counts
    assert counts[0]["waiting"] == 0 and counts[-1]["waiting"] == 1
