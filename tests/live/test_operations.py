"""Events, wait, progress, logs, history and the worker list, through the API served over real HTTP
and worker processes started as in production, against real Redis and PostgreSQL (org keys).

Organisation B's jobs are under test; A is the other organisation, whose key must see nothing of
them; the operator sees everything."""

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from forgestack_db.database import Database

from tests.api.test_api_keys import OPERATOR_KEY
from tests.fixtures_db import OrgKeys, make_org_keys
from tests.live.fleet import HEARTBEAT_MS, EventReader, Fleet, serve

QUEUE = "my-new-job"


@dataclass
class World:
    client: httpx.AsyncClient
    fleet: Fleet
    a: OrgKeys
    b: OrgKeys

    async def call(self, key: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        return await self.client.request(method, url, headers=headers, **kwargs)

    async def add(self, key: str, action: str, seconds: float = 1, **options: Any) -> str:
        data = {"user_id": "u", "action": action, "payload": {"seconds": seconds}}
        response = await self.call(
            key, "POST", f"/api/v1/queues/{QUEUE}/jobs", json={"data": data, "options": options}
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    async def workers(self) -> list[dict[str, Any]]:
        response = await self.call(OPERATOR_KEY, "GET", "/api/v1/workers")
        assert response.status_code == 200, response.text
        listed: list[dict[str, Any]] = response.json()
        return listed

    async def workers_until(self, done: Any, within_s: float) -> list[dict[str, Any]]:
        async with asyncio.timeout(within_s):
            while not done(listed := await self.workers()):
                await asyncio.sleep(0.05)
        return listed


@pytest.fixture
async def world(
    pg_app: FastAPI, app_db: Database, redis_url: str, queue_prefix: str, tmp_path: Path
) -> AsyncIterator[World]:
    a, b = await make_org_keys(app_db), await make_org_keys(app_db)
    fleet = Fleet(redis_url, queue_prefix, tmp_path)
    try:
        async with (
            serve(pg_app) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=90) as client,
        ):
            yield World(client, fleet, a, b)
    finally:
        fleet.stop()


async def test_wait_sse_progress_and_history_are_each_organisations_own(world: World) -> None:
    b_reader = EventReader(world.client, world.b.member, QUEUE)
    a_reader = EventReader(world.client, world.a.member, QUEUE)
    operator = EventReader(world.client, OPERATOR_KEY, QUEUE)
    try:
        await asyncio.gather(b_reader.opened.wait(), a_reader.opened.wait(), operator.opened.wait())
        slow = await world.add(world.b.member, "sleep")
        broken = await world.add(world.b.member, "fail-permanently")
        flaky = await world.add(
            world.b.member, "fail-once", attempts=2, backoff={"type": "fixed", "delay": 0}
        )
        mine = await world.add(world.a.member, "greet")
        # Another organisation's waits are 404s, before any worker runs.
        for job in (slow, f"{world.b.org_id}~{slow}"):
            other = await world.call(world.a.member, "GET", f"/api/v1/jobs/{job}/wait")
            assert other.status_code == 404, other.text
        still = await world.call(world.b.member, "GET", f"/api/v1/jobs/{slow}/wait?timeout_ms=200")
        assert still.status_code == 200
        assert still.json()["finished"] is False and still.json()["state"] == "waiting"

        waits = [
            asyncio.create_task(
                world.call(world.b.member, "GET", f"/api/v1/jobs/{job}/wait?timeout_ms=60000")
            )
            for job in (slow, broken)
        ]
        world.fleet.start_worker()
        done, failed = [(await w).json() for w in waits]
        assert done["finished"] is True and done["state"] == "completed", done
        assert done["result"]["success"] is True
        assert failed["finished"] is True and failed["state"] == "failed"
        assert "fail-permanently" in failed["failed_reason"]

        def finished(events: list[dict[str, Any]], *ids: str) -> bool:
            ended = {e["job_id"] for e in events if e["event"] in ("completed", "failed")}
            return ended >= set(ids)

        seen = await b_reader.until(lambda ev: finished(ev, slow, broken, flaky))
        of_slow = [e["event"] for e in seen if e["job_id"] == slow]
        assert of_slow[:2] == ["added", "active"] and of_slow[-1] == "completed"
        assert {"progress", "log"} <= set(of_slow)
        assert [e["sse_event"] for e in seen] == [e["event"] for e in seen]
        assert {e["job_id"] for e in seen} == {slow, broken, flaky}
        flaky_events = [e["event"] for e in seen if e["job_id"] == flaky]
        assert flaky_events == ["added", "active", "retrying", "active", "completed"]

        every = await operator.until(lambda ev: finished(ev, f"{world.a.org_id}~{mine}"))
        assert f"{world.b.org_id}~{slow}" in {e["job_id"] for e in every}
        await a_reader.until(lambda ev: finished(ev, mine))
        assert {e["job_id"] for e in a_reader.events} == {mine}
        assert str(world.b.org_id) not in str(a_reader.events)

        job = (await world.call(world.b.member, "GET", f"/api/v1/jobs/{slow}")).json()
        assert job["progress"] == {"done": 1, "of": 1}
        assert job["logs"] == ["step 1 of 1"]
        assert [h["event"] for h in job["history"]] == ["added", "started", "completed"]
        recovered = (await world.call(world.b.member, "GET", f"/api/v1/jobs/{flaky}")).json()
        assert recovered["state"] == "completed" and recovered["failed_reason"] is None
        assert [(h["event"], h["attempt"]) for h in recovered["history"]] == [
            ("added", None),
            ("started", 1),
            ("retry", 1),
            ("started", 2),
            ("completed", 2),
        ]
        assert "fails its first attempt" in recovered["history"][2]["note"]
    finally:
        for reader in (b_reader, a_reader, operator):
            await reader.close()

    # Resume: after the first event seen, the same events follow, from Last-Event-ID.
    resumed = EventReader(
        world.client, world.b.member, QUEUE, **{"Last-Event-ID": seen[0]["sse_id"]}
    )
    try:
        again = await resumed.until(lambda ev: len(ev) >= len(seen) - 1)
        assert [e["sse_id"] for e in again[: len(seen) - 1]] == [e["sse_id"] for e in seen[1:]]
    finally:
        await resumed.close()
    bad = await world.call(
        world.b.member, "GET", "/api/v1/events", params={"queue": QUEUE, "last_id": "nope"}
    )
    assert bad.status_code == 400 and bad.json()["code"] == "bad_request"
    unknown = await world.call(world.b.member, "GET", "/api/v1/events", params={"queue": "nope"})
    assert unknown.status_code == 404


async def test_the_worker_list_shows_live_workers_and_drops_a_killed_one(world: World) -> None:
    first, second = world.fleet.start_worker(), world.fleet.start_worker()
    listed = await world.workers_until(lambda ws: len(ws) == 2, within_s=60)
    assert {w["pid"] for w in listed} == {first.pid, second.pid}, world.fleet.logs()
    for worker in listed:
        assert worker["queues"] == sorted(worker["queues"]) and QUEUE in worker["queues"]
        assert worker["concurrency"] == 10 and worker["host"]
        assert worker["started_at"] <= worker["last_beat"]
    busy = await world.add(world.b.member, "sleep", seconds=15, job_id="busy")
    full_id = f"{world.b.org_id}~{busy}"
    # The operator sees which job runs where, under its full id.
    busy_list = await world.workers_until(
        lambda ws: [j["id"] for w in ws for j in w["jobs"]] == [full_id], within_s=20
    )
    assert len(busy_list) == 2 and sum(w["running"] for w in busy_list) == 1
    # B sees the fleet without hosts or pids, and its own job under its own id.
    b_view = (await world.call(world.b.member, "GET", "/api/v1/workers")).json()
    assert {w["id"] for w in b_view} == {w["id"] for w in busy_list}
    assert all(w["host"] is None and w["pid"] is None for w in b_view)
    assert [j for w in b_view for j in w["jobs"]] == [{"id": busy, "queue": QUEUE}]
    # A sees how busy the fleet is, never B's job.
    a_answer = await world.call(world.a.admin, "GET", "/api/v1/workers")
    assert a_answer.status_code == 200, a_answer.text
    a_view = a_answer.json()
    assert sum(w["running"] for w in a_view) == 1
    assert all(w["jobs"] == [] and w["host"] is None and w["pid"] is None for w in a_view)
    assert str(world.b.org_id) not in a_answer.text and f'"{busy}"' not in a_answer.text

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = time.monotonic()
    after = await world.workers_until(lambda ws: len(ws) == 1, within_s=10)
    assert time.monotonic() - killed_at <= 2 * HEARTBEAT_MS / 1000 + 0.5
    assert [w["pid"] for w in after] == [second.pid]
