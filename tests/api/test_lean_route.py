"""`LeanJsonRoute` answers exactly as FastAPI's own handler would: the enqueue endpoints are also
mounted under a second path with FastAPI's `APIRoute`, and every request goes to both."""

from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.routing import APIRoute
from forgestack_api.caller import CallerDep, resolve_caller
from forgestack_api.lean_route import LeanJsonRoute
from forgestack_api.routes.enqueue import enqueue, enqueue_bulk
from forgestack_api.schemas import EnqueueRequest

from tests.api.conftest import ADMIN_KEY

LEAN = "/api/v1/queues/my-new-job/jobs"
PLAIN = "/plain/my-new-job/jobs"
DATA = {"user_id": "u1", "action": "greet", "payload": {"n": 1}}
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def plain_app(app: FastAPI) -> FastAPI:
    for path, endpoint in (
        ("/plain/{queue}/jobs", enqueue),
        ("/plain/{queue}/jobs:bulk", enqueue_bulk),
    ):
        app.router.add_api_route(
            path, endpoint, methods=["POST"], status_code=202, route_class_override=APIRoute
        )
    return app


def _comparable(response: httpx.Response) -> tuple[int, Any, str | None]:
    body = response.json()
    if isinstance(body, dict) and "id" in body and response.status_code == 202:
        body["id"] = "<generated>"
    if isinstance(body, list):
        body = [{**job, "id": "<generated>"} for job in body]
    return response.status_code, body, response.headers.get("www-authenticate")


CASES: list[tuple[str, bytes, dict[str, str]]] = [
    ("valid", b'{"data": {"user_id": "u1", "action": "greet"}}', AUTH | JSON),
    ("charset", b'{"data": {"user_id": "u1", "action": "greet"}}', AUTH | {"Content-Type": "application/json; charset=utf-8"}),
    ("+json", b'{"data": {"user_id": "u1", "action": "greet"}}', AUTH | {"Content-Type": "application/vnd.api+json"}),
    ("two slashes", b'{"data": {"user_id": "u1", "action": "greet"}}', AUTH | {"Content-Type": "application/x/y+json"}),
    ("text/plain", b'{"data": {"user_id": "u1", "action": "greet"}}', AUTH | {"Content-Type": "text/plain"}),
    ("no content type", b'{"data": {"user_id": "u1", "action": "greet"}}', AUTH),
    ("empty", b"", AUTH | JSON),
    ("not json", b"{not json", AUTH | JSON),
    ("not json, no key", b"{not json", JSON),
    ("no key", b'{"data": {"user_id": "u1", "action": "greet"}}', JSON),
    ("wrong key", b'{"data": {"user_id": "u1", "action": "greet"}}', JSON | {"Authorization": "Bearer nope"}),
    ("extra field", b'{"data": {"user_id": "u1", "action": "greet"}, "x": 1}', AUTH | JSON),
    ("data not an object", b'{"data": [1]}', AUTH | JSON),
    ("invalid data", b'{"data": {"user_id": "u1"}}', AUTH | JSON),
    ("invalid options", b'{"data": {"user_id": "u1", "action": "greet"}, "options": {"attempts": 0}}', AUTH | JSON),
    ("a list", b"[]", AUTH | JSON),
    ("NaN", b'{"data": {"user_id": "u1", "action": "greet", "payload": {"n": NaN}}}', AUTH | JSON),
    ("lone surrogate", b'{"data": {"user_id": "\\ud800", "action": "greet"}}', AUTH | JSON),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "headers"), CASES, ids=[c[0] for c in CASES])
async def test_each_request_gets_fastapis_answer(
    plain_app: FastAPI, case: str, body: bytes, headers: dict[str, str]
) -> None:
    transport = httpx.ASGITransport(app=plain_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        lean = await client.post(LEAN, content=body, headers=headers)
        plain = await client.post(PLAIN, content=body, headers=headers)
    assert _comparable(lean) == _comparable(plain), case


async def test_unknown_queue_and_a_job_id_seen_before(plain_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=plain_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api.test", headers=AUTH
    ) as c:
        for path in (LEAN.replace("my-new-job", "nope"), PLAIN.replace("my-new-job", "nope")):
            assert (await c.post(path, json={"data": DATA})).json()["code"] == "unknown_queue"
        first = await c.post(LEAN, json={"data": DATA, "options": {"job_id": "j1"}})
        again = [
            await c.post(p, json={"data": DATA, "options": {"job_id": "j1"}}) for p in (LEAN, PLAIN)
        ]
    assert first.status_code == 202
    assert [_comparable(r) for r in again] == [_comparable(again[0])] * 2
    assert again[0].status_code == 200 and again[0].json()["id"] == "j1"


async def test_bulk_answers_as_fastapi_would(plain_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=plain_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api.test", headers=AUTH
    ) as c:
        for body in ({"jobs": [{"data": DATA}] * 3}, {"jobs": []}, {"jobs": [{"data": {}}]}):
            lean, plain = [await c.post(p + ":bulk", json=body) for p in (LEAN, PLAIN)]
            assert _comparable(lean) == _comparable(plain), body
            assert lean.headers["content-type"] == plain.headers["content-type"]


async def _other(queue: str, body: EnqueueRequest, caller: CallerDep, request: Request) -> None:
    """Takes the request too: a shape the lean handler does not serve."""


async def _no_caller(queue: str, body: EnqueueRequest) -> None:
    """No caller: the lean handler would skip authentication."""


@pytest.mark.parametrize("endpoint", [_other, _no_caller])
def test_an_endpoint_of_another_shape_is_refused_when_the_route_is_built(endpoint: Any) -> None:
    with pytest.raises(TypeError, match="LeanJsonRoute"):
        LeanJsonRoute("/x/{queue}", endpoint, methods=["POST"])


async def test_an_accepted_request_never_reaches_fastapis_solver(
    plain_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the route is for: the answers above are equal, and the accepted ones are the lean
    handler's own, not FastAPI's through the fallback."""

    async def solver(**_: Any) -> None:
        raise AssertionError("FastAPI's dependency solver ran")

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", solver)
    transport = httpx.ASGITransport(app=plain_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api.test", headers=AUTH
    ) as c:
        assert (await c.post(LEAN, json={"data": DATA})).status_code == 202
        assert (await c.post(LEAN + ":bulk", json={"jobs": [{"data": DATA}]})).status_code == 202
        with pytest.raises(AssertionError, match="solver ran"):
            await c.post(PLAIN, json={"data": DATA})


async def _disconnecting(app: FastAPI, path: str) -> list[Any]:
    """The client sends part of a chunked body, then hangs up; what the app answers, or raises."""
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"data": {', "more_body": True},
    ]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(k.lower().encode(), v.encode()) for k, v in (AUTH | JSON).items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "server": ("api.test", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [*headers, (b"transfer-encoding", b"chunked")],
    }
    try:
        await app(scope, receive, send)
    except Exception as exc:  # what escapes the app is the answer compared
        return [type(exc).__name__]
    return [m["status"] for m in sent if m["type"] == "http.response.start"]


async def test_a_client_hanging_up_mid_body_gets_fastapis_answer(plain_app: FastAPI) -> None:
    """FastAPI turns a failed body read into its 400; escaping, it would be a 500 and a traceback
    in the server's log for each client that hangs up."""
    assert await _disconnecting(plain_app, LEAN) == await _disconnecting(plain_app, PLAIN) == [400]


async def test_an_override_of_the_caller_is_honoured(plain_app: FastAPI) -> None:
    """`app.dependency_overrides` (FastAPI's testing hook) applies to these routes as to others."""

    async def refuse() -> None:
        raise HTTPException(418, "overridden")

    plain_app.dependency_overrides[resolve_caller] = refuse
    try:
        transport = httpx.ASGITransport(app=plain_app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api.test", headers=AUTH
        ) as c:
            answers = [(await c.post(p, json={"data": DATA})).status_code for p in (LEAN, PLAIN)]
    finally:
        plain_app.dependency_overrides.clear()
    assert answers == [418, 418]


async def test_the_enqueue_routes_are_the_first_tried(
    app: FastAPI, anon: httpx.AsyncClient
) -> None:
    """Every route before them is one more match per enqueue; the ones FastAPI adds for its
    documentation come after them and still answer."""
    first = [getattr(route, "path", None) for route in app.router.routes[:2]]
    assert first == ["/api/v1/queues/{queue}/jobs", "/api/v1/queues/{queue}/jobs:bulk"]
    assert (await anon.get("/openapi.json")).status_code == 200
