"""The live API and the browser for the dashboard's browser tests (see live.py)."""

from tests.api.dashboard.live import chromium, live_api, open_page

__all__ = ["chromium", "live_api", "open_page"]
