"""The dashboard in Debian's Chromium against a running API and worker: sign in with a key, watch
a job go from waiting to completed without a reload, retry a failed job, clean, add a job from the
schema form, a narrow screen, the keyboard; and another organisation's key seeing nothing of it.
Screenshots go to the test's tmp dir (pytest keeps the last runs')."""

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import redis
from forgestack_queue.keys import QueueKeys
from playwright.sync_api import Page, expect

from tests.api.dashboard.live import LiveApi, sign_in

OpenPage = Callable[..., Page]


def _add_from_form(page: Page, live: LiveApi, action: str) -> str:
    page.goto(f"{live.base_url}/dashboard/queues/my-new-job")
    page.get_by_role("link", name="Add a job").click()
    page.fill("#data-user_id", "user-7")
    page.fill("#data-action", action)
    page.fill("#data-payload", '{"api_key": "sk-browser-secret", "n": 1}')
    page.get_by_role("button", name="Add job").click()
    page.wait_for_url(re.compile(r"/dashboard/jobs/[0-9a-f]+\?msg="))
    return page.url.split("/dashboard/jobs/")[1].split("?")[0]


def test_an_operator_day(open_page: OpenPage, live_api: LiveApi, tmp_path: Path) -> None:
    live = live_api
    page = open_page(viewport={"width": 1200, "height": 900})
    context = page.context
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, live, live.a.owner)
    assert live.a.owner not in page.url
    cookie = next(c for c in context.cookies() if c["name"] == "forgestack_dashboard")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # scripts cannot read the session

    # Browser-side validation: an empty required field and bad JSON are never sent.
    page.goto(f"{live.base_url}/dashboard/queues/my-new-job/add")
    page.fill("#data-payload", "{not json")
    page.get_by_role("button", name="Add job").click()
    assert page.url.endswith("/dashboard/queues/my-new-job/add")
    assert page.locator("#data-user_id:invalid").count() == 1
    assert page.locator("#data-payload:invalid").count() == 1

    # A job added from the form waits, then completes while the page stays open.
    job_id = _add_from_form(page, live, "greet")
    state = page.locator("[data-job-state]")
    expect(state).to_have_text("waiting")
    expect(page.locator("[data-live-status]")).to_have_text("live")
    expect(page.locator("#job-detail")).not_to_contain_text("sk-browser-secret")
    page.evaluate("window.notReloaded = true")
    page.screenshot(path=tmp_path / "job-waiting.png", full_page=True)
    live.work().join(timeout=30)
    expect(state).to_have_text("completed")
    expect(page.locator("#job-detail")).to_contain_text("processed_at")
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=tmp_path / "job-completed.png", full_page=True)

    # A failing job: its traceback shows; retry it (confirmed), it waits again.
    failing = _add_from_form(page, live, "fail-permanently")
    live.work().join(timeout=30)
    expect(state).to_have_text("failed")
    expect(page.locator("pre.trace")).to_contain_text("UnrecoverableError")
    page.screenshot(path=tmp_path / "job-failed.png", full_page=True)
    page.get_by_role("button", name="Retry").click()
    expect(page.locator(".flash")).to_contain_text(f"Job {failing} is waiting again.")
    expect(state).to_have_text("waiting")
    live.work().join(timeout=30)
    expect(state).to_have_text("failed")

    # The overview follows a job added through the API, live.
    page.goto(f"{live.base_url}/dashboard")
    page.evaluate("window.notReloaded = true")
    waiting = page.locator('[data-live="my-new-job:waiting"]')
    expect(waiting).to_have_text("0")
    expect(page.locator('[data-live="my-new-job:completed"]')).to_have_text("1")
    response = httpx.post(
        f"{live.base_url}/api/v1/queues/my-new-job/jobs",
        json={"data": {"user_id": "u", "action": "greet"}},
        headers={"Authorization": f"Bearer {live.a.owner}"},
    )
    assert response.status_code == 202
    expect(waiting).to_have_text("1")
    assert page.evaluate("window.notReloaded") is True
    page.set_viewport_size({"width": 1100, "height": 440})
    page.screenshot(path=tmp_path / "overview.png")  # the README's docs/dashboard.png

    # Clean the failed jobs, confirmed; the list is empty after.
    page.goto(f"{live.base_url}/dashboard/queues/my-new-job?state=failed")
    expect(page.get_by_role("link", name=failing)).to_be_visible()
    page.locator("summary", has_text="Queue actions").click()
    page.select_option("#clean-state", "failed")
    page.fill("#clean-age", "0")
    page.get_by_role("button", name="Clean").click()
    expect(page.locator(".flash")).to_contain_text("Removed 1 failed job(s)")
    page.goto(f"{live.base_url}/dashboard/queues/my-new-job?state=failed")
    expect(page.get_by_text("No failed jobs.")).to_be_visible()

    # Search by id finds the completed job.
    page.fill("#search-id", job_id)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live.base_url}/dashboard/jobs/{job_id}")


def test_narrow_screen_and_keyboard(open_page: OpenPage, live_api: LiveApi, tmp_path: Path) -> None:
    live = live_api
    page = open_page(viewport={"width": 360, "height": 740})
    dialogs: list[str] = []

    def accept(dialog: object) -> None:
        dialogs.append(dialog.message)  # type: ignore[attr-defined]
        dialog.accept()  # type: ignore[attr-defined]

    page.on("dialog", accept)
    # Signing in by keyboard alone.
    page.goto(f"{live.base_url}/dashboard/login")
    # The key field has focus on arrival (autofocus, which the browser applies a frame after
    # the load: keys typed before then went nowhere in one run on a loaded machine).
    expect(page.locator("#api_key")).to_be_focused()
    page.keyboard.type(live.a.owner)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live.base_url}/dashboard")
    job_id = _add_from_form(page, live, "fail-permanently")
    live.work().join(timeout=30)
    expect(page.locator("[data-job-state]")).to_have_text("failed")
    for path in (
        "/dashboard",
        f"/dashboard/jobs/{job_id}",
        "/dashboard/queues/my-new-job?state=failed",
    ):
        page.goto(f"{live.base_url}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (path, overflow)
    page.screenshot(path=tmp_path / "narrow-failed-list.png", full_page=True)

    # Tab to the job's Retry button and press Enter: the confirmation comes, the job is retried.
    page.goto(f"{live.base_url}/dashboard/jobs/{job_id}")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.action") == "retry":
            break
    else:
        raise AssertionError("the Retry button is not reachable by keyboard")
    page.keyboard.press("Enter")
    expect(page.locator("[data-job-state]")).to_have_text("waiting")
    assert dialogs[-1] == "Move this failed job back to waiting, attempts reset?"
    page.screenshot(path=tmp_path / "narrow-job.png", full_page=True)


def test_another_organisation_sees_nothing(
    open_page: OpenPage, live_api: LiveApi, tmp_path: Path
) -> None:
    live = live_api
    page = open_page()
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, live, live.a.owner)
    a_job = _add_from_form(page, live, "greet")

    page = open_page()
    sign_in(page, live, live.b.owner)
    expect(page.locator('[data-live="my-new-job:waiting"]')).to_have_text("0")
    expect(page.locator("[data-live-status]")).to_have_text("live")
    for state in ("waiting", "active", "completed", "failed", "delayed"):
        page.goto(f"{live.base_url}/dashboard/queues/my-new-job?state={state}")
        assert a_job not in page.content()
    response = page.goto(f"{live.base_url}/dashboard/jobs/{a_job}")
    assert response is not None and response.status == 404
    assert "sk-browser-secret" not in page.content()
    page.screenshot(path=tmp_path / "other-org-404.png", full_page=True)


def test_the_operator_pauses_and_resumes(
    open_page: OpenPage, live_api: LiveApi, tmp_path: Path
) -> None:
    live = live_api
    page = open_page()
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, live, "test-admin-key")  # the `settings` fixture's operator key
    page.goto(f"{live.base_url}/dashboard/queues/my-new-job")
    page.locator("summary", has_text="Queue actions").click()
    page.get_by_role("button", name="Pause").click()
    expect(page.locator(".flash")).to_contain_text("my-new-job is paused")
    expect(page.locator("h1 .paused")).to_be_visible()
    page.goto(f"{live.base_url}/dashboard")
    expect(page.locator('[data-live="my-new-job:paused"]')).to_be_visible()
    expect(page.locator('[data-live="notification-email:paused"]')).to_be_hidden()
    page.screenshot(path=tmp_path / "paused.png", full_page=True)
    page.goto(f"{live.base_url}/dashboard/queues/my-new-job")
    page.locator("summary", has_text="Queue actions").click()
    page.get_by_role("button", name="Resume").click()
    expect(page.locator(".flash")).to_contain_text("my-new-job is running again")
    expect(page.locator("h1 .paused")).to_be_hidden()


RECORD_SSE = """
(() => {
  const Original = window.EventSource;
  window.sseMessages = [];
  window.EventSource = function (url, init) {
    const source = new Original(url, init);
    for (const name of ["overview", "job"]) {
      source.addEventListener(name, (e) => {
        const data = JSON.parse(e.data);
        window.sseMessages.push({name, data});
        // Waitable without eval (the dashboard's CSP forbids it): <html data-sse-job-completed>.
        if (data.event) document.documentElement.setAttribute(`data-sse-${name}-${data.event}`, "");
      });
    }
    return source;
  };
  window.EventSource.prototype = Original.prototype;
})();
"""
"""Records every message the page's EventSource receives, before the page script subscribes."""


def test_a_jobs_page_is_pushed_the_event_that_moved_it(
    open_page: OpenPage, live_api: LiveApi
) -> None:
    """Every push after the first names the queue stream entry that caused it, the job's
    `completed` entry among them: the page is fed by the job's events, not by a timer."""
    live = live_api
    page = open_page()
    page.add_init_script(RECORD_SSE)
    sign_in(page, live, live.a.owner)
    job_id = httpx.post(
        f"{live.base_url}/api/v1/queues/my-new-job/jobs",
        json={"data": {"user_id": "u", "action": "greet"}},
        headers={"Authorization": f"Bearer {live.a.owner}"},
    ).json()["id"]
    page.goto(f"{live.base_url}/dashboard/jobs/{job_id}")
    expect(page.locator("[data-live-status]")).to_have_text("live")
    state = page.locator("[data-job-state]")
    expect(state).to_have_text("waiting")
    page.evaluate("window.notReloaded = true")
    live.work().join(timeout=30)
    expect(state).to_have_text("completed")
    assert page.evaluate("window.notReloaded") is True
    # The record may show `completed` from the push of its `active` event already; the push of
    # the `completed` entry itself follows.
    expect(page.locator("html[data-sse-job-completed]")).to_have_count(1)

    pushes = [m["data"] for m in page.evaluate("window.sseMessages") if m["name"] == "job"]
    assert pushes[0]["state"] == "waiting" and "event" not in pushes[0]  # the snapshot
    client = redis.Redis.from_url(live.redis_url)
    try:
        stream = client.xrange(QueueKeys(live.prefix, "my-new-job").events)
    finally:
        client.close()
    own = {
        entry_id.decode(): fields[b"e"].decode()
        for entry_id, fields in stream
        if fields[b"j"].decode().endswith(f"~{job_id}")
    }
    # Each later push names one of the job's own stream entries; the completed one is pushed.
    assert all(own.get(p["event_id"]) == p["event"] for p in pushes[1:]), (pushes, own)
    done = next(p for p in pushes if p.get("event") == "completed")
    assert done["state"] == "completed"
    assert own[done["event_id"]] == "completed"
