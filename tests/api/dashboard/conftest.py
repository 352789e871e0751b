"""The live API and the browser for the dashboard's browser tests (see live.py)."""

from playwright.sync_api import expect

from tests.api.dashboard.live import chromium, live_api, open_page

# Two CPUs shared with other test runs: an assertion waits as long as a page action may.
expect.set_options(timeout=20_000)

__all__ = ["chromium", "live_api", "open_page"]
