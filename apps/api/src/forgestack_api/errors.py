"""The API's own exceptions and the one place where every error becomes an HTTP answer.

Routes and the queue service raise; they never build error responses themselves, so a given
failure looks the same on every endpoint.
"""

from typing import Any

import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from forgestack_queue.errors import (
    AmbiguousJobIdError,
    InvalidJobStateError,
    JobIdInUseError,
    JobNotFoundError,
    PayloadTooLargeError,
    ResultTooLargeError,
)
from loguru import logger
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from .database_errors import DatabaseUnavailableError, InvalidTextError

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


class UnknownQueueError(LookupError):
    """The queue name is not in the catalog: nothing could ever consume such a job."""

    def __init__(self, queue: str) -> None:
        super().__init__(f"unknown queue {queue!r}")
        self.queue = queue


class JobInputError(ValueError):
    """Job data or options do not validate; `errors` are pydantic-style with a full `loc`."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self.errors = errors


class WrongPayloadTypeError(TypeError):
    """A model of another queue was passed: mypy catches it statically, this is the run-time net."""


def validation_errors(exc: ValidationError, *loc: str | int) -> list[dict[str, Any]]:
    """Pydantic errors re-rooted under `loc` (e.g. body/data), without echoing the input back."""
    errors = exc.errors(include_url=False, include_input=False)
    return [{**jsonable_encoder(err), "loc": [*loc, *err["loc"]]} for err in errors]


def _error(status: int, code: str, detail: Any, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail, "code": code, **extra})


async def _unknown_queue(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UnknownQueueError)
    return _error(404, "unknown_queue", str(exc))


async def _job_input(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, JobInputError)
    return _error(422, "invalid_job", exc.errors)


async def _job_not_found(_: Request, exc: Exception) -> JSONResponse:
    return _error(404, "job_not_found", str(exc))


async def _invalid_state(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidJobStateError)
    return _error(409, "invalid_job_state", str(exc), state=exc.state)


async def _job_id_in_use(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, JobIdInUseError)
    return _error(409, "job_id_in_use", str(exc))


async def _ambiguous_job_id(_: Request, exc: Exception) -> JSONResponse:
    """Redis Cluster only: a custom id is unique per queue there, and the lookup never guesses."""
    assert isinstance(exc, AmbiguousJobIdError)
    return _error(409, "ambiguous_job_id", str(exc), queues=exc.queues)


async def _payload_too_large(_: Request, exc: Exception) -> JSONResponse:
    """The job layer's own cap (for producers that bypass HTTP), under the request body cap."""
    assert isinstance(exc, PayloadTooLargeError)
    return _error(413, "payload_too_large", str(exc), limit=exc.limit)


async def _result_too_large(_: Request, exc: Exception) -> JSONResponse:
    """The job ended well; only its result is gone (removed on completion, too large to carry)."""
    assert isinstance(exc, ResultTooLargeError)
    return _error(410, "result_too_large", str(exc), size=exc.size)


async def _redis_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # redis-py's messages carry host and port, never the password of the URL.
    logger.warning("redis unavailable during {} {}: {}", request.method, request.url.path, exc)
    return _error(
        503,
        "dependency_unavailable",
        f"the job store (Redis) is unreachable ({type(exc).__name__}); retry, with the same "
        "job_id to make the retry safe",
        dependency="redis",
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Only the cause's type is logged and returned: driver messages may name users or hosts.
    cause = exc.__cause__ or exc
    logger.warning(
        "database unavailable during {} {}: {}", request.method, request.url.path, type(cause)
    )
    return _error(
        503,
        "dependency_unavailable",
        f"the database is unreachable ({type(cause).__name__}); retry shortly",
        dependency="database",
    )


async def _invalid_text(request: Request, _: Exception) -> JSONResponse:
    """A NUL in a stored field or a filter is the caller's input, not a server fault."""
    logger.info("refused text with a NUL character in {} {}", request.method, request.url.path)
    return _error(
        422, "invalid_text", "text fields and filters cannot contain the NUL character (U+0000)"
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own HTTP errors (auth, unknown routes), with the same `code` as ours."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error" if exc.status_code < 500 else "server_error")
    response = _error(exc.status_code, code, exc.detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _request_invalid(_: Request, exc: Exception) -> JSONResponse:
    """Malformed requests (body shape, query parameters): FastAPI's field errors, our shape."""
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in err.items() if k != "input"} for err in exc.errors()]
    return _error(422, "invalid_request", jsonable_encoder(errors))


def install_error_handlers(app: FastAPI) -> None:
    """Registers every mapping; a new error type gets its status here and nowhere else."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(UnknownQueueError, _unknown_queue)
    app.add_exception_handler(JobInputError, _job_input)
    app.add_exception_handler(JobNotFoundError, _job_not_found)
    app.add_exception_handler(InvalidJobStateError, _invalid_state)
    app.add_exception_handler(JobIdInUseError, _job_id_in_use)
    app.add_exception_handler(AmbiguousJobIdError, _ambiguous_job_id)
    app.add_exception_handler(PayloadTooLargeError, _payload_too_large)
    app.add_exception_handler(ResultTooLargeError, _result_too_large)
    app.add_exception_handler(redis.exceptions.ConnectionError, _redis_unavailable)
    app.add_exception_handler(redis.exceptions.TimeoutError, _redis_unavailable)
    app.add_exception_handler(DatabaseUnavailableError, _database_unavailable)
    app.add_exception_handler(InvalidTextError, _invalid_text)
