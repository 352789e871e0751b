"""`/docs` and `/redoc` in Debian's Chromium with every request off this API refused: the
operator behind a firewall still reads the API, each queue's payload included."""

from collections.abc import Callable
from urllib.parse import urlsplit

from playwright.sync_api import Page, Route, expect

from tests.api.dashboard.live import LiveApi

OpenPage = Callable[..., Page]


def _offline(page: Page, live: LiveApi) -> list[str]:
    """Aborts every request to another origin, as a machine without internet access would, and
    returns the list of what was refused so the test can say which asset needed the network."""
    own = urlsplit(live.base_url).netloc
    refused: list[str] = []

    def gate(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == own or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    page.route("**/*", gate)
    return refused


def test_swagger_ui_renders_with_no_network(open_page: OpenPage, live_api: LiveApi) -> None:
    page = open_page(viewport={"width": 1200, "height": 900})
    refused = _offline(page, live_api)
    page.goto(f"{live_api.base_url}/docs")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible(timeout=30_000)
    assert operations.count() > 10
    # A queue's own payload model is there to read, not a free-form object.
    expect(page.locator(".models, section.models").first).to_be_visible()
    page.get_by_text("/api/v1/queues/my-new-job/jobs", exact=True).first.click()
    expect(page.get_by_text("user_id").first).to_be_visible()
    assert refused == []


def test_redoc_renders_with_no_network(open_page: OpenPage, live_api: LiveApi) -> None:
    page = open_page(viewport={"width": 1200, "height": 900})
    refused = _offline(page, live_api)
    page.goto(f"{live_api.base_url}/redoc")
    expect(page.locator(".api-content").first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("/api/v1/queues/my-new-job/jobs").first).to_be_attached()
    assert refused == []
