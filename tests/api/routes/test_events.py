"""The server-sent event stream's own framing: bounded in time, keep-alives and its end carry the
read position as an `id:` line without data, so a reconnect misses nothing (the organisation
scoping and resume through real HTTP are in tests/live)."""

import json

import httpx
import pytest
from forgestack_api.routes import events as events_route

JOBS = "/api/v1/queues/my-new-job/jobs"
DATA = {"user_id": "u1", "action": "greet"}


def _blocks(text: str) -> list[dict[str, str]]:
    blocks = []
    for raw in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in raw.splitlines() if line)
        if fields:
            blocks.append(fields)
    return blocks


async def test_a_stream_ends_after_its_time_with_the_read_position(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_route, "MAX_STREAM_S", 1.0)
    monkeypatch.setattr(events_route, "KEEPALIVE_MS", 300)
    added = await client.post(JOBS, json={"data": DATA})
    assert added.status_code == 202, added.text
    job_id = added.json()["id"]

    response = await client.get("/api/v1/events", params={"queue": "my-new-job", "last_id": "0-0"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = _blocks(response.text)
    assert blocks[0] == {"retry": "2000"}
    event = blocks[1]
    assert event["event"] == "added"
    assert json.loads(event["data"])["job_id"] == job_id
    # Then only id lines: keep-alives while quiet, and the last one as the stream ends.
    assert len(blocks) >= 3
    assert all(set(b) == {"id"} and b["id"] == event["id"] for b in blocks[2:])


async def test_a_stream_from_now_starts_after_the_newest_event(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_route, "MAX_STREAM_S", 0.5)
    await client.post(JOBS, json={"data": DATA})
    response = await client.get("/api/v1/events", params={"queue": "my-new-job"})
    blocks = _blocks(response.text)
    assert [b.get("event") for b in blocks if "data" in b] == []
    assert "id" in blocks[-1]
