"""A request id on every request: taken from `X-Request-ID` (a proxy's) or made here, returned
in the response, bound on the request's log lines and carried into the jobs it adds.

Pure ASGI rather than `BaseHTTPMiddleware`: that one runs the app in another task, costing a
hop per request on the path the bench measures."""

import re
from contextlib import nullcontext

from forgestack_queue.ids import uuid4_hex
from forgestack_queue.meta import LOGGED_FIELDS, job_meta
from forgestack_queue.tracing import trace_fields
from loguru import logger
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
_tracer = trace.get_tracer("forgestack.api")
_SAFE = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
"""A caller's id is kept only if short and plain: it lands in log lines and job records."""


def request_id_of(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == HEADER and _SAFE.match(value):
            return str(value.decode("ascii"))
    return uuid4_hex()


def route_template(scope: Scope) -> str:
    """The matched route's full template: FastAPI keeps an included router's route under its own
    (prefix-less) path and records the full one in the effective route context."""
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    path = getattr(context, "path", None) or getattr(scope.get("route"), "path", None)
    return str(path) if path else "unmatched"


class RequestContextMiddleware:
    """With `tracing`, the request's span is also the trace parent of the jobs it adds."""

    def __init__(self, app: ASGIApp, tracing: bool = False) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        raw = request_id.encode("ascii")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (HEADER, raw)]
            await send(message)

        with logger.contextualize(request_id=request_id), job_meta(request_id=request_id):
            if not self.tracing:
                await self.app(scope, receive, send_with_id)
                return
            # FastAPI opens the server span itself (named by route template) once a tracer
            # provider is installed; one is opened here only for a FastAPI that does not.
            own = nullcontext() if _in_span() else _tracer.start_as_current_span(scope["method"])
            with own:
                fields = trace_fields()
                logged = {k: v for k, v in fields.items() if k in LOGGED_FIELDS}
                with logger.contextualize(**logged), job_meta(**fields):
                    await self.app(scope, receive, send_with_id)


def _in_span() -> bool:
    return bool(trace.get_current_span().get_span_context().is_valid)
