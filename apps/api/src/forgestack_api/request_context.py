"""A request id on every request: taken from `X-Request-ID` (a proxy's) or made here, returned
in the response, bound on the request's log lines and carried into the jobs it adds.

Pure ASGI rather than `BaseHTTPMiddleware`: that one runs the app in another task, costing a
hop per request on the path the bench measures."""

import re
import uuid

from forgestack_queue.meta import job_meta
from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
_SAFE = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
"""A caller's id is kept only if short and plain: it lands in log lines and job records."""


def request_id_of(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == HEADER and _SAFE.match(value):
            return str(value.decode("ascii"))
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            await self.app(scope, receive, send_with_id)
