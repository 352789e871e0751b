"""A real API on a loopback port (uvicorn in a thread, PostgreSQL-backed keys for two
organisations), a burst worker run on demand in a thread, and Debian's Chromium driven by
Playwright: the dashboard exactly as an operator's browser meets it."""

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import uvicorn
from forgestack_db.database import Database
from forgestack_queue.testing import run_burst_worker
from forgestack_shared.settings import get_settings
from forgestack_worker.registry import HANDLERS
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.conftest import free_port
from tests.fixtures_db import OrgKeys, PgTestDatabase, make_org_keys, run_sync

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class LiveApi:
    base_url: str
    a: OrgKeys
    b: OrgKeys
    redis_url: str
    prefix: str

    def work(self) -> threading.Thread:
        """A burst worker in its own thread and loop: runs what is waiting, then stops."""
        handlers = [h for h in HANDLERS if h.queue == "my-new-job"]
        thread = threading.Thread(
            target=asyncio.run,
            args=(run_burst_worker(self.redis_url, handlers, prefix=self.prefix),),
            daemon=True,
        )
        thread.start()
        return thread


async def _two_orgs(url: str) -> tuple[OrgKeys, OrgKeys]:
    db = Database.from_url(url)
    try:
        return await make_org_keys(db, "org-a"), await make_org_keys(db, "org-b")
    finally:
        await db.dispose()


@pytest.fixture
def live_api(
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    pg_database: PgTestDatabase,
    redis_url: str,
    queue_prefix: str,
) -> Iterator[LiveApi]:
    from forgestack_api.main import create_app

    monkeypatch.setenv("DATABASE_URL", pg_database.app_url)
    get_settings.cache_clear()
    a, b = run_sync(_two_orgs(pg_database.app_url))
    port = free_port()
    config = uvicorn.Config(
        create_app(),
        host="127.0.0.1",
        port=port,
        log_config=None,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        yield LiveApi(f"http://127.0.0.1:{port}", a, b, redis_url, queue_prefix)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{queue_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium (`.ci/run` installs it); Playwright never downloads a browser here."""
    assert CHROMIUM.exists(), "install Debian's chromium package (apt-get install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def open_page(chromium: Browser, live_api: LiveApi) -> Iterator[Callable[..., Page]]:
    """New browser contexts (separate cookie jars) on demand; closed before the API stops, so no
    live stream is left open for its shutdown to cut."""
    contexts: list[BrowserContext] = []

    def new(**options: Any) -> Page:
        context = chromium.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        return page

    try:
        yield new
    finally:
        for context in contexts:
            context.close()


def sign_in(page: Page, live: LiveApi, key: str) -> None:
    page.goto(f"{live.base_url}/dashboard")
    assert page.url.endswith("/dashboard/login")
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.base_url}/dashboard")
