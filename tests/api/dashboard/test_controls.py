"""The operations actions wired from the ops-control routes: promote and cancel a job (owners),
pause and resume a queue (the operator only, queue-wide), each confirmed and CSRF-checked."""

import httpx

from tests.api.dashboard.helpers import submit


async def _delayed(client: httpx.AsyncClient) -> str:
    body = {"data": {"user_id": "u", "action": "greet"}, "options": {"delay": 3_600_000}}
    response = await client.post("/api/v1/queues/my-new-job/jobs", json=body)
    assert response.json()["state"] == "delayed"
    return str(response.json()["id"])


async def test_a_delayed_job_can_run_now_or_be_cancelled(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    promoted, cancelled = await _delayed(client), await _delayed(client)
    page = (await browser.get(f"/dashboard/jobs/{promoted}")).text
    assert 'data-action="promote"' in page and 'data-action="cancel"' in page
    assert 'data-action="retry"' not in page

    done = await submit(browser, f"/dashboard/jobs/{promoted}/actions/promote")
    assert done.status_code == 303
    assert (await client.get(f"/api/v1/jobs/{promoted}")).json()["state"] == "waiting"
    again = await submit(browser, f"/dashboard/jobs/{promoted}/actions/promote")
    assert again.status_code == 409

    await submit(browser, f"/dashboard/jobs/{cancelled}/actions/cancel")
    job = (await client.get(f"/api/v1/jobs/{cancelled}")).json()
    assert job["state"] == "failed"
    assert "cancel" in job["failed_reason"]


async def test_the_operator_pauses_and_resumes_a_queue(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    def paused(queues: list[dict[str, object]]) -> bool:
        return bool(next(q for q in queues if q["name"] == "my-new-job")["paused"])

    page = (await browser.get("/dashboard/queues/my-new-job")).text
    assert 'data-action="pause"' in page and 'data-action="resume"' not in page
    unconfirmed = await submit(
        browser, "/dashboard/queues/my-new-job/actions/pause", confirmed=False
    )
    assert "Pause this queue for every organisation?" in unconfirmed.text
    assert not paused((await client.get("/api/v1/queues")).json())

    await submit(browser, "/dashboard/queues/my-new-job/actions/pause")
    assert paused((await client.get("/api/v1/queues")).json())
    page = (await browser.get("/dashboard/queues/my-new-job")).text
    assert 'data-action="resume"' in page and 'data-action="pause"' not in page
    assert 'data-live="my-new-job:paused" >paused' in page.replace("\n", "")

    await submit(browser, "/dashboard/queues/my-new-job/actions/resume")
    assert not paused((await client.get("/api/v1/queues")).json())
