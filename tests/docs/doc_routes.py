"""The routes the API app really serves, and matching of the paths a page writes against them:
templates with any parameter names (`{id}` for `{job_id}`), and concrete example paths
(`/api/v1/jobs/<id>/retry`, `$API/api/v1/queues/my-new-job/jobs?state=failed`)."""

import re
import shlex
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from fastapi import routing
from forgestack_api.deferred_routes import include_deferred_routes
from forgestack_api.main import create_app

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PARAM = re.compile(r"\{[^}/]*\}")


@dataclass(frozen=True, order=True)
class Route:
    method: str
    path: str
    module: str = field(default="", compare=False)
    """Where the endpoint is defined, to say where to look when a route is not documented."""
    dependencies: frozenset[str] = field(default=frozenset(), compare=False)
    """Names of the functions its endpoint depends on, directly or not (`require_tenant`)."""

    @property
    def key(self) -> tuple[str, str]:
        """Method and path with parameter names erased: `{job_id}` and `{id}` are one route."""
        return self.method, PARAM.sub("{}", self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def matches(self, method: str, concrete: str) -> bool:
        """`concrete` is an example path: parameters hold any one segment (`<id>`, `my-new-job`)."""
        parts = [re.escape(part) for part in PARAM.split(self.path)]
        pattern = "[^/?#]+".join(parts)
        return method == self.method and re.fullmatch(pattern, concrete) is not None


def _routes_of(app_routes: list[object]) -> list[object]:
    """Every route of included routers, flattened (FastAPI >= 0.16x nests them)."""
    flatten = getattr(routing, "iter_route_contexts", None)
    return list(flatten(app_routes)) if flatten else list(app_routes)


def _dependency_names(dependant: Any) -> set[str]:
    names: set[str] = set()
    for sub in getattr(dependant, "dependencies", ()):
        if sub.call is not None:
            names.add(getattr(sub.call, "__name__", ""))
        names |= _dependency_names(sub)
    return names


@cache
def served_routes() -> frozenset[Route]:
    """Every method and path the app answers (HEAD, which Starlette adds to GET, left out)."""
    app = create_app()
    include_deferred_routes(app)
    found = set()
    for route in _routes_of(app.routes):
        endpoint = getattr(route, "endpoint", None)
        module = getattr(endpoint, "__module__", "")
        original = getattr(route, "original_route", route)
        needs = frozenset(_dependency_names(getattr(original, "dependant", None)))
        for method in getattr(route, "methods", None) or ():
            if method in METHODS:
                found.add(Route(method, route.path, module, needs))  # type: ignore[attr-defined]
    return frozenset(found)


@dataclass(frozen=True)
class CurlCall:
    method: str
    path: str
    key: str | None
    """The variable of its `Authorization: Bearer $VAR` header, if any."""


def curl_call(command: str) -> CurlCall | None:
    """What a `curl ... "$API/path"` command calls; None when it names no `$API` URL."""
    words = shlex.split(command.replace("\\\n", " "), comments=True)
    if not words or words[0] != "curl":
        return None
    method = None
    has_body = False
    path = None
    key = None
    for index, word in enumerate(words):
        if word == "-X":
            method = words[index + 1]
        elif word in ("-d", "--data", "--data-raw", "--json"):
            has_body = True
        elif word.startswith("$API"):
            path = word.removeprefix("$API").split("?", 1)[0]
        elif word.startswith("Authorization: Bearer "):
            key = word.removeprefix("Authorization: Bearer ")
    if path is None:
        return None
    return CurlCall(method or ("POST" if has_body else "GET"), path, key)


def route_for(method: str, concrete: str) -> Route | None:
    return next((r for r in served_routes() if r.matches(method, concrete)), None)
