"""What the job page shows (secrets masked, failure and traceback) and the add form generated
from the queue's JSON schema, validated again by the server with each field's error named."""

import html
import re

import httpx
from forgestack_queue.testing import run_burst_worker
from forgestack_worker.registry import HANDLERS

from tests.api.dashboard.helpers import submit

SECRETS = {
    "api_key": "sk-live-0001",
    "password": "hunter2-0002",
    "nested": {"Authorization": "Bearer tok-0003", "refresh_token": "rt-0004"},
    "items": [{"client_secret": "cs-0005"}],
}


async def test_a_jobs_secrets_are_masked_and_its_failure_shown(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, redis_url: str, queue_prefix: str
) -> None:
    data = {"user_id": "u", "action": "fail-permanently", "payload": {**SECRETS, "note": "kept"}}
    job_id = (await client.post("/api/v1/queues/my-new-job/jobs", json={"data": data})).json()["id"]
    await run_burst_worker(redis_url, HANDLERS, prefix=queue_prefix)
    page = await browser.get(f"/dashboard/jobs/{job_id}")
    assert page.status_code == 200
    for secret in ("sk-live-0001", "hunter2-0002", "tok-0003", "rt-0004", "cs-0005"):
        assert secret not in page.text
    assert page.text.count("(redacted)") == 5
    assert "kept" in page.text
    assert "UnrecoverableError" in page.text  # the traceback
    assert 'data-action="retry"' in page.text
    assert 'class="state state-failed"' in page.text


async def test_a_jobs_progress_log_lines_and_history_are_shown(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, redis_url: str, queue_prefix: str
) -> None:
    data = {"user_id": "u", "action": "sleep", "payload": {"seconds": 0.01}}
    job_id = (await client.post("/api/v1/queues/my-new-job/jobs", json={"data": data})).json()["id"]
    await run_burst_worker(redis_url, HANDLERS, prefix=queue_prefix)
    page = (await browser.get(f"/dashboard/jobs/{job_id}")).text
    progress = re.search(r"<pre class=\"json\" data-job-progress>(.*?)</pre>", page, re.S)
    assert (
        progress is not None and html.unescape(progress.group(1)) == '{\n  "done": 1,\n  "of": 1\n}'
    )
    assert re.search(r"<pre class=\"log\" data-job-logs>step 1 of 1\n</pre>", page)
    history = re.findall(r"</time> ([^<]*)</li>", page)
    assert history == ["added", "started (attempt 1)", "completed (attempt 1)"]


async def test_the_add_form_follows_the_queue_schema(browser: httpx.AsyncClient) -> None:
    form = (await browser.get("/dashboard/queues/notification-email/add")).text
    assert re.search(r'name="data.to"[^>]*minlength="3"[^>]*maxlength="500"', form, re.S)
    assert re.search(r'<select id="data-template" name="data.template" required>', form)
    for choice in ("welcome", "invitation", "notification"):
        assert f"<option >{choice}</option>" in form
    assert 'name="data.variables"' in form and "data-json" in form
    assert re.search(r'name="options.priority"[^>]*min="0"[^>]*max="1023"', form, re.S)
    assert 'name="data.to"' in form and "required" in form


async def test_adding_validates_and_names_each_bad_field(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    url = "/dashboard/queues/my-new-job/add"
    bad = await submit(
        browser, url, {"data.user_id": "", "data.action": "greet", "options.attempts": "0"}
    )
    assert bad.status_code == 422
    assert "data.user_id: Field required" in bad.text
    assert "options.attempts: Input should be greater than or equal to 1" in bad.text
    not_json = await submit(
        browser, url, {"data.user_id": "u", "data.action": "a", "data.payload": "{oops"}
    )
    assert not_json.status_code == 422
    assert "data.payload: not valid json" in not_json.text
    counts = (await client.get("/api/v1/queues")).json()
    assert next(q for q in counts if q["name"] == "my-new-job")["counts"]["waiting"] == 0

    good = await submit(
        browser,
        url,
        {
            "data.user_id": "u7",
            "data.action": "greet",
            "data.payload": '{"n": 1}',
            "options.job_id": "from-the-form",
            "options.priority": "3",
        },
    )
    assert good.status_code == 303
    assert good.headers["location"].startswith("/dashboard/jobs/from-the-form?msg=")
    job = (await client.get("/api/v1/jobs/from-the-form")).json()
    assert job["data"] == {"user_id": "u7", "action": "greet", "payload": {"n": 1}}
    assert job["priority"] == 3
    assert job["options"]["attempts"] == 3  # the catalog default: an empty field is left out


async def test_an_unconfirmed_add_asks_first_and_keeps_the_values(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    response = await submit(
        browser,
        "/dashboard/queues/my-new-job/add",
        {"data.user_id": "u", "data.action": "greet"},
        confirmed=False,
    )
    assert response.status_code == 200
    assert "Add this job to my-new-job?" in response.text
    assert 'name="data.user_id" value="u"' in response.text
    counts = (await client.get("/api/v1/queues")).json()
    assert next(q for q in counts if q["name"] == "my-new-job")["counts"]["waiting"] == 0
