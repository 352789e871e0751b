"""An organisation's dashboard shows its own jobs only: another organisation's job is a 404 page
like a missing one, and none of its ids, data or counts appear on any page. Roles apply as in the
API: a member reads but sees no action and may not act."""

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from forgestack_db.database import Database
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker
from forgestack_worker.registry import HANDLERS

from tests.api.dashboard.helpers import csrf_of, sign_in
from tests.fixtures_db import OrgKeys, make_org_keys

SECRET = "B-ONLY-SECRET"


@dataclass
class Orgs:
    app: FastAPI
    a: OrgKeys
    b: OrgKeys
    b_jobs: list[str]


async def _add(app: FastAPI, key: str, action: str, payload: dict[str, str]) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as api:
        response = await api.post(
            "/api/v1/queues/my-new-job/jobs",
            json={"data": {"user_id": "u", "action": action, "payload": payload}},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


@pytest.fixture
async def orgs(pg_app: FastAPI, app_db: Database, redis_url: str, queue_prefix: str) -> Orgs:
    a, b = await make_org_keys(app_db), await make_org_keys(app_db)
    failed = await _add(pg_app, b.owner, "fail-permanently", {"note": SECRET})
    done = await _add(pg_app, b.owner, "greet", {"note": SECRET})
    handlers = [h for h in HANDLERS if h.queue == "my-new-job"]
    await run_burst_worker(redis_url, handlers, prefix=queue_prefix)
    waiting = await _add(pg_app, b.owner, "greet", {"note": SECRET})
    return Orgs(pg_app, a, b, [failed, done, waiting])


@pytest.fixture
async def session(orgs: Orgs) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=orgs.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


async def _pages(client: httpx.AsyncClient, extra: list[str]) -> list[httpx.Response]:
    paths = ["/dashboard", *extra]
    paths += [f"/dashboard/queues/my-new-job?state={s}" for s in JobState]
    return [await client.get(p) for p in paths]


async def test_another_organisations_jobs_never_appear(
    orgs: Orgs, session: httpx.AsyncClient
) -> None:
    await sign_in(session, orgs.a.admin)
    for response in await _pages(session, []):
        assert response.status_code == 200
        for marker in (*orgs.b_jobs, SECRET, str(orgs.b.org_id)):
            assert marker not in response.text, (marker, str(response.url))
    overview = (await session.get("/dashboard")).text
    counts = re.findall(r'data-live="my-new-job:(\w+)">([^<]*)<', overview)
    assert dict(counts) == {
        **{s.value: "0" for s in JobState},
        "throughput_per_min": "0.0",
        "failure_rate": "\u2013",  # an en dash: nothing finished
        "workers": "0",  # the burst worker has left
    }


@pytest.mark.parametrize("index", [0, 1, 2])
async def test_another_organisations_job_is_a_404_like_a_missing_one(
    orgs: Orgs, session: httpx.AsyncClient, index: int
) -> None:
    await sign_in(session, orgs.a.admin)
    job_id = orgs.b_jobs[index]
    page = await session.get(f"/dashboard/jobs/{job_id}")
    missing = await session.get("/dashboard/jobs/never-was")
    assert page.status_code == missing.status_code == 404
    assert page.text.replace(job_id, "ID") == missing.text.replace("never-was", "ID")
    assert SECRET not in page.text

    search = await session.get("/dashboard/queues/my-new-job", params={"id": job_id})
    assert search.status_code == 200
    assert f"No job {job_id} in my-new-job" in search.text

    csrf = await csrf_of(session)
    for action in ("retry", "remove"):
        acted = await session.post(
            f"/dashboard/jobs/{job_id}/actions/{action}", data={"csrf": csrf, "confirmed": "yes"}
        )
        assert acted.status_code == 404
    cleaned = await session.post(
        "/dashboard/queues/my-new-job/actions/clean",
        data={"csrf": csrf, "confirmed": "yes", "state": "failed", "older_than_min": "0"},
    )
    assert cleaned.status_code == 303
    assert "Removed 0 failed" in cleaned.headers["location"].replace("%20", " ")

    await sign_in(session, orgs.b.owner)
    assert (await session.get(f"/dashboard/jobs/{orgs.b_jobs[0]}")).status_code == 200


async def test_the_own_organisation_sees_its_jobs_and_counts(
    orgs: Orgs, session: httpx.AsyncClient
) -> None:
    await sign_in(session, orgs.b.owner)
    failed = await session.get("/dashboard/queues/my-new-job?state=failed")
    assert orgs.b_jobs[0] in failed.text
    overview = (await session.get("/dashboard")).text
    assert 'data-live="my-new-job:failed">1<' in overview
    assert 'data-live="my-new-job:completed">1<' in overview
    assert 'data-live="my-new-job:failure_rate">50.0%<' in overview
    found = await session.get("/dashboard/queues/my-new-job", params={"id": orgs.b_jobs[1]})
    assert found.status_code == 303
    assert found.headers["location"] == f"/dashboard/jobs/{orgs.b_jobs[1]}"


async def test_a_member_reads_but_cannot_act(orgs: Orgs, session: httpx.AsyncClient) -> None:
    await sign_in(session, orgs.b.member)
    job = await session.get(f"/dashboard/jobs/{orgs.b_jobs[0]}")
    assert job.status_code == 200
    assert "data-action=" not in job.text
    assert "Queue actions" not in (await session.get("/dashboard/queues/my-new-job")).text
    csrf = await csrf_of(session)
    retry = await session.post(
        f"/dashboard/jobs/{orgs.b_jobs[0]}/actions/retry", data={"csrf": csrf, "confirmed": "yes"}
    )
    assert retry.status_code == 403
    audit = await session.get("/dashboard/queues/audit-logs")
    assert audit.status_code == 403


async def test_an_organisations_admin_cannot_pause_a_shared_queue(
    orgs: Orgs, session: httpx.AsyncClient
) -> None:
    await sign_in(session, orgs.b.admin)
    page = (await session.get("/dashboard/queues/my-new-job")).text
    assert 'data-action="retry-failed"' in page
    assert 'data-action="pause"' not in page
    csrf = await csrf_of(session)
    paused = await session.post(
        "/dashboard/queues/my-new-job/actions/pause", data={"csrf": csrf, "confirmed": "yes"}
    )
    assert paused.status_code == 403
