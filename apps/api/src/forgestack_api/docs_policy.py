"""A content security policy on the API documentation pages.

The Swagger UI and ReDoc assets are served by the app (fastapi-offline), but ReDoc's bundle still
names one image on a CDN (its "API docs by Redocly" logo). Behind a firewall that request hangs or
fails; with this policy the browser never sends it (the bundle hides the image when it fails), so
the pages make no request off the API at all. Pure ASGI and keyed on the path, so every other
request pays one set lookup.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})

# Swagger UI and ReDoc start from an inline script and inline styles; ReDoc runs its search in a
# worker built from a blob. Everything else must come from the API itself.
POLICY = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class DocsPolicyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in DOCS_PATHS:
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", POLICY))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_policy)
