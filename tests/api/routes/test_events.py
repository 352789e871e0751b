"""The server-sent event stream's own framing: bounded in time; for the operator keep-alives and
its end carry the read position as an `id:` line without data, so a reconnect misses nothing; an
organisation gets comment keep-alives (the organisation
scoping and resume through real HTTP are in tests/live)."""

import json

import httpx
import pytest
from fastapi import FastAPI
from forgestack_api.routes import events as events_route
from forgestack_db.database import Database

from tests.api.test_api_keys import as_key
from tests.fixtures_db import make_org_keys

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


@pytest.mark.parametrize(
    "bad", ["18446744073709551616-0", "1-99999999999999999999", "x-1", "1-", "-1"]
)
async def test_an_id_redis_would_refuse_is_a_400_before_the_stream_starts(
    client: httpx.AsyncClient, bad: str
) -> None:
    # Past 64 bits Redis' XREAD fails, after the 200 and its headers were sent: a broken stream
    # the browser reconnects to with the same id, for ever.
    for params, headers in (({"last_id": bad}, {}), ({}, {"Last-Event-ID": bad})):
        response = await client.get(
            "/api/v1/events", params={"queue": "my-new-job", **params}, headers=headers
        )
        assert response.status_code == 400, response.text
        assert "event id" in response.json()["detail"]


async def test_the_largest_id_redis_takes_is_accepted(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_route, "MAX_STREAM_S", 0.3)
    top = f"{2**64 - 1}-{2**64 - 1}"
    response = await client.get("/api/v1/events", params={"queue": "my-new-job", "last_id": top})
    assert response.status_code == 200
    assert _blocks(response.text)[-1] == {"id": top}


async def test_an_organisation_learns_nothing_of_the_others_activity(
    pg_app: FastAPI, app_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read position moves with every organisation's events: an organisation's stream keeps
    alive with comment lines and ends without an id, so it never sees that position move."""
    monkeypatch.setattr(events_route, "MAX_STREAM_S", 1.0)
    monkeypatch.setattr(events_route, "KEEPALIVE_MS", 200)
    ours, theirs = await make_org_keys(app_db), await make_org_keys(app_db)
    async with as_key(pg_app, theirs.member) as other:
        for _ in range(3):
            assert (await other.post(JOBS, json={"data": DATA})).status_code == 202
    async with as_key(pg_app, ours.member) as client:
        response = await client.get(
            "/api/v1/events", params={"queue": "my-new-job", "last_id": "0-0"}
        )
    assert response.status_code == 200
    blocks = _blocks(response.text)
    assert blocks[0] == {"retry": "2000"}
    assert all(set(b) == {""} for b in blocks[1:]), blocks  # keep-alive comments only
    assert len(blocks) >= 2
