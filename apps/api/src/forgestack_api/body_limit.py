"""A cap on request bodies, enforced while they stream in.

Pure ASGI: a declared `Content-Length` above the cap is refused before the app runs (no key lookup,
nothing read), one within it is let through untouched, and a chunked body is counted message by
message as the app pulls it, so at most the cap plus one chunk is ever held. Starlette's own limiter answers plain text on some paths; this
one answers with the API's error shape everywhere.
"""

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestBodyTooLargeError(HTTPException):
    """Raised from `receive` once the body passes the cap; FastAPI re-raises HTTP exceptions raised
    while it reads a body, so the app's own handler answers it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds the limit of {limit} bytes")


def too_large_response(limit: int) -> JSONResponse:
    detail = RequestBodyTooLargeError(limit).detail
    return JSONResponse(status_code=413, content={"detail": detail, "code": "payload_too_large"})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_bytes:
                await too_large_response(self.max_bytes)(scope, receive, send)
                return
            if "transfer-encoding" not in headers:
                # The server reads exactly the declared length as the body (what follows is the
                # next request): a body declared within the cap stays within it.
                await self.app(scope, receive, send)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestBodyTooLargeError(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except RequestBodyTooLargeError:
            if started:
                raise
            await too_large_response(self.max_bytes)(scope, receive, send)
