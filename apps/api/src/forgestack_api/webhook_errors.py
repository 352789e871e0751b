"""The webhook routes' one error of their own, apart from them so the app maps it without loading
the routes (they load the database layer: see `deferred_routes`)."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class WebhookUrlRefusedError(ValueError):
    """The endpoint URL is not one the SSRF guard lets us call."""


async def _refused(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        status_code=422, content={"detail": str(exc), "code": "webhook_url_refused"}
    )


def install_webhook_errors(app: FastAPI) -> None:
    app.add_exception_handler(WebhookUrlRefusedError, _refused)
