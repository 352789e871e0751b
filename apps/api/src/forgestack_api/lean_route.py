"""`LeanJsonRoute`: the route class of the enqueue endpoints, the path the HTTP bench measures.

Per request FastAPI's own handler records the endpoint's source location, parses the content type
through `email.message`, decodes the body to Python objects before validating them, walks the
dependency tree and validates the returned model once more before serialising it: about a third
of an enqueue's CPU. These endpoints have one shape (string path parameters, one JSON body model,
`CallerDep`, a `Response` returned as is), checked when the route is built. Their handler here
validates the body straight from its bytes and calls the endpoint; the endpoint, its signature and
so its OpenAPI operation stay as declared.

Only the accepted request takes this path. A body that is empty, not declared as JSON or not
valid goes to FastAPI's own handler with the body already read, and one that could not be read (a
client gone mid-body) goes there too, so every refusal (its status, `detail`, and the order of 401
and 422) is FastAPI's, not an imitation of it. With tracing on, the request keeps its server span
(FastAPI opens it before routing) but not FastAPI's finer `fastapi.dependencies` and
`fastapi.endpoint` spans, which only its own handler opens."""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from fastapi.telemetry import get_telemetry_data
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from .caller import resolve_caller

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class LeanJsonRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        fallback = super().get_route_handler()
        dependant = self.dependant
        body = _body_field(self)
        call = self.endpoint
        path_params = tuple(p.name for p in dependant.path_params)
        caller_name = _caller_param(self)
        body_name, model = body
        provider = self.dependency_overrides_provider

        async def handle(request: Request) -> Response:
            if resolve_caller in getattr(provider, "dependency_overrides", ()):
                return await fallback(request)  # FastAPI's solver applies the override
            try:
                raw = await request.body()
            except HTTPException:
                raise  # the body limit's 413, answered by the app's handler as in FastAPI's
            except Exception:  # a client gone mid-body: FastAPI answers 400
                return await fallback(request)
            if not raw or not _declares_json(request.headers.get("content-type")):
                return await fallback(request)
            try:
                parsed = model.model_validate_json(raw)
            except ValidationError:
                return await fallback(request)
            values: dict[str, Any] = {name: request.path_params[name] for name in path_params}
            values[body_name] = parsed
            values[caller_name] = await resolve_caller(request)
            telemetry = get_telemetry_data()
            if telemetry is not None:
                telemetry.request, telemetry.values = request, values
            response: Response = await call(**values)
            return response

        return handle


def _declares_json(content_type: str | None) -> bool:
    """The content types FastAPI decodes as JSON: `application/json` and `application/*+json`,
    read as `email.message` reads them (a type with other than one `/` is `text/plain`)."""
    if content_type is None:
        return False
    media = content_type.partition(";")[0].strip().lower()
    if media.count("/") != 1:
        return False
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _body_field(route: APIRoute) -> tuple[str, type[BaseModel]]:
    dependant = route.dependant
    params = dependant.body_params
    model = params[0].field_info.annotation if len(params) == 1 else None
    unsupported = (
        dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.request_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.security_scopes_param_name
        or dependant.background_tasks_param_name
        or any(p.field_info.annotation is not str for p in dependant.path_params)
    )
    if unsupported or not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(
            f"{route.path}: a LeanJsonRoute endpoint takes str path parameters, one body model "
            "and CallerDep, nothing else"
        )
    return params[0].name, model


def _caller_param(route: APIRoute) -> str:
    dependencies = route.dependant.dependencies
    name = dependencies[0].name if len(dependencies) == 1 else None
    if name is None or dependencies[0].call is not resolve_caller:
        raise TypeError(f"{route.path}: a LeanJsonRoute endpoint takes CallerDep")
    return name
