"""Templates, their filters, the headers every dashboard response carries, and the route class
that turns errors into pages: a missing session redirects to the login, and the API's errors
(404 for another organisation's job as for a missing one, 403, 409) become an error page with the
same status instead of JSON."""

import functools
import json
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request, Response, status
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from forgestack_queue.errors import InvalidJobStateError, JobNotFoundError

from ..errors import UnknownQueueError
from .redact import redact
from .session import LoginRequired

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent


@functools.cache
def templates() -> "Jinja2Templates":
    """Made, and Jinja2 imported, on the first page: an API process that never serves the
    dashboard does not carry them (about 1.5 MiB)."""
    from fastapi import templating

    made = templating.Jinja2Templates(directory=HERE / "templates")
    made.env.filters["pretty"] = _pretty
    made.env.filters["when"] = _when
    return made


def _pretty(value: Any) -> str:
    return json.dumps(redact(value), indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    response = templates().TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def error_page(request: Request, status_code: int, message: str) -> Response:
    return page(request, "error.html", {"status": status_code, "message": message}, status_code)


def _status_and_message(exc: Exception) -> tuple[int, str] | None:
    if isinstance(exc, JobNotFoundError | UnknownQueueError):
        return status.HTTP_404_NOT_FOUND, str(exc)
    if isinstance(exc, InvalidJobStateError):
        return status.HTTP_409_CONFLICT, str(exc)
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return exc.status_code, str(exc.detail)
    return None


class DashboardRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                return RedirectResponse("/dashboard/login", status.HTTP_303_SEE_OTHER)
            except Exception as exc:
                known = _status_and_message(exc)
                if known is None:
                    raise
                return error_page(request, *known)
            response.headers.update(SECURITY_HEADERS)
            return response

        return handle
