"""The README's route list against the routes the app serves, both ways: every listed route is
served, and every route the app serves is listed (the dashboard's own pages aside), so a route
added or renamed in code fails here naming the route and the side it is missing from. The curl
examples are checked too: each calls a method and path the app serves."""

import re
from pathlib import Path

from tests.docs.doc_routes import Route, curl_call, route_for, served_routes

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
LISTED = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`")
UNLISTED_PREFIXES = ("/dashboard/", "/docs/")
"""The dashboard's pages and actions (the README's Dashboard section describes them) and Swagger
UI's OAuth redirect helper: served, but not routes a client calls."""


def _route_list() -> list[Route]:
    section = README.split("<!-- routes:begin", 1)[1].split("<!-- routes:end -->", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [
        Route(method, path) for row in rows for method, path in LISTED.findall(row.split("|")[1])
    ]


def test_the_route_list_is_found() -> None:
    assert len(_route_list()) >= 40


def test_every_listed_route_is_served() -> None:
    served = {route.key for route in served_routes()}
    not_served = [str(route) for route in _route_list() if route.key not in served]
    assert not not_served, (
        "README.md's route list names routes the app does not serve (remove or correct them): "
        + ", ".join(not_served)
    )


def test_every_served_route_is_listed() -> None:
    listed = {route.key for route in _route_list()}
    missing = sorted(
        f"{route} (from {route.module})"
        for route in served_routes()
        if route.key not in listed and not route.path.startswith(UNLISTED_PREFIXES)
    )
    assert not missing, (
        "the app serves routes README.md's route list (<!-- routes:begin --> ... end) lacks; "
        "add a row for each: " + "; ".join(missing)
    )


def test_no_route_is_listed_twice() -> None:
    keys = [route.key for route in _route_list()]
    twice = sorted({f"{method} {path}" for method, path in keys if keys.count((method, path)) > 1})
    assert twice == []


def curl_commands(text: str) -> list[str]:
    shell = re.findall(r"^```sh\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    joined = "\n".join(shell).replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip().startswith("curl ")]


def test_every_curl_example_calls_a_served_route() -> None:
    calls = [call for call in map(curl_call, curl_commands(README)) if call is not None]
    assert len(calls) >= 20
    unknown = [f"{c.method} {c.path}" for c in calls if route_for(c.method, c.path) is None]
    assert unknown == [], f"README.md's curl examples call routes the app does not serve: {unknown}"


def test_a_route_matches_examples_by_segment_only() -> None:
    """The matcher is what the curl test trusts, so it must not accept near misses."""
    route = Route("POST", "/api/v1/queues/{queue}/jobs")
    assert route.matches("POST", "/api/v1/queues/my-new-job/jobs")
    assert not route.matches("POST", "/api/v1/queues/my-new-job/jobs:bulk")
    assert not route.matches("GET", "/api/v1/queues/my-new-job/jobs")
    assert not route.matches("POST", "/api/v1/queues/a/b/jobs")
    assert Route("GET", "/api/v1/jobs/{job_id}").key == Route("GET", "/api/v1/jobs/{id}").key
