"""The live stream over a real connection: it needs a session, carries the caller's own counts and
a job's state, and for another organisation's job says only `missing`."""

import json
import re

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
