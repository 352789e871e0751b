"""The OpenAPI document as a client needs it: each queue's enqueue operations with that queue's
data model, every error answer with the one error shape, and job answers typed per state
(`openapi_jobs`).

Routes stay generic (`/queues/{queue}/jobs` validates against the catalog at run time); the
document is post-processed once, from the catalog, so a new queue appears here with no route
change and other route files need only their own `responses=` notes."""

import copy
from typing import Any

from fastapi import FastAPI
from forgestack_queue.options import JobOptions
from forgestack_shared.catalog import CATALOG
from forgestack_shared.queues import QueueName
from pydantic import BaseModel

from .openapi_jobs import install_job_states

_API = "/api/v1"
_REF = "#/components/schemas/{model}"

EXAMPLES: dict[QueueName, dict[str, Any]] = {
    QueueName.MY_NEW_JOB: {
        "data": {"user_id": "u1", "action": "greet", "payload": {}},
        "options": {"attempts": 5, "backoff": {"type": "exponential", "delay": 1000}},
    },
    QueueName.NOTIFICATION_EMAIL: {
        "data": {
            "to": "Jane Doe <jane@example.com>",
            "subject": "Welcome aboard",
            "template": "welcome",
            "variables": {"name": "Jane", "action_url": "https://example.com/start"},
        },
        "options": {"priority": 1},
    },
    QueueName.AUDIT_LOGS: {
        "data": {
            "org_id": None,
            "actor_id": "ops",
            "actor_type": "system",
            "action": "queue.cleaned",
            "resource_type": "queue",
        },
    },
    QueueName.WEBHOOK_DELIVERY: {
        "data": {
            "org_id": "6f1c2a4e-8b7d-4c3e-9a5f-2d1e0b9c8a7f",
            "delivery_id": "0b9c8a7f-2d1e-4c3e-9a5f-6f1c2a4e8b7d",
        },
    },
}
"""One request per queue that the API accepts (a test posts each); the docs' "Try it out" body."""

_ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "description": "Every error answer. `code` is stable for programs; some codes add fields "
    "(`state` on invalid_job_state, `limit` on payload_too_large, `dependency` on "
    "dependency_unavailable).",
    "required": ["detail", "code"],
    "properties": {
        "detail": {
            "description": "A sentence, or for 422 one object per invalid field (`loc`, `msg`, "
            "`type`).",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}],
        },
        "code": {"type": "string", "examples": ["unknown_queue", "invalid_job", "forbidden"]},
    },
    "additionalProperties": True,
}

_AUTHENTICATED = {
    "401": "Missing, malformed or unknown API key (`WWW-Authenticate: Bearer`).",
    "403": "The key's role may not do this (see the README's roles).",
    "503": "Redis or the database is unreachable: retry (with the same `job_id` when adding).",
}
_WITH_BODY = {
    "413": "The body exceeds `API_MAX_BODY_BYTES`, or a job's data the job layer's cap.",
    "422": "The body or a parameter does not validate; `detail` lists each field.",
}
_WITH_PARAMS = {"422": "A parameter does not validate; `detail` lists each field."}
_WITH_PATH_PARAMS = {
    "404": "Nothing by that name for this caller (another organisation's is the same 404)."
}


def install_openapi(app: FastAPI) -> None:
    """Replaces `app.openapi` with the catalog-aware document, built once on first request."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = catalog_document(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def catalog_document(doc: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    _add_model(schemas, JobOptions)
    paths: dict[str, Any] = doc["paths"]
    single = paths[f"{_API}/queues/{{queue}}/jobs"].pop("post")
    bulk = paths.pop(f"{_API}/queues/{{queue}}/jobs:bulk")["post"]
    enqueue: list[str] = []
    for name, spec in CATALOG.items():
        model = spec.data_model.__name__
        _add_model(schemas, spec.data_model)
        schemas[f"{model}Job"] = {
            "title": f"{model}Job",
            "type": "object",
            "additionalProperties": False,
            "required": ["data"],
            "properties": {
                "data": {"$ref": _REF.format(model=model)},
                "options": {
                    "$ref": _REF.format(model="JobOptions"),
                    "description": "Unset fields take the queue's defaults (times in ms, "
                    "retention age in s).",
                },
            },
        }
        example = EXAMPLES[name]
        base = f"{_API}/queues/{name.value}/jobs"
        paths[base] = {"post": _for_queue(single, name, f"{model}Job", example)}
        bulk_body = {
            "type": "object",
            "additionalProperties": False,
            "required": ["jobs"],
            "properties": {
                "jobs": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 1000,
                    "items": {"$ref": _REF.format(model=f"{model}Job")},
                }
            },
        }
        paths[f"{base}:bulk"] = {"post": _for_queue(bulk, name, bulk_body, {"jobs": [example]})}
        enqueue += [base, f"{base}:bulk"]
    schemas["Error"] = _ERROR_SCHEMA
    install_job_states(schemas, paths)
    for path, operations in paths.items():
        if path.startswith(_API):
            for operation in operations.values():
                _document_errors(operation)
    for unused in (
        "HTTPValidationError",
        "ValidationError",
        "EnqueueRequest",
        "BulkEnqueueRequest",
    ):
        schemas.pop(unused, None)
    doc["paths"] = _in_reading_order(paths, enqueue)
    return doc


def _in_reading_order(paths: dict[str, Any], enqueue: list[str]) -> dict[str, Any]:
    """Swagger UI lists a tag's operations in the document's order, and the app's route order
    is the one that matches fastest (enqueue routes first), not the one that reads best: the
    queue listing comes first, then each queue's enqueue operations, then the rest."""
    listing = f"{_API}/queues"
    ordered: dict[str, Any] = {}
    for path, operations in paths.items():
        if path in enqueue:
            continue
        if path.startswith(listing) and listing not in ordered and listing in paths:
            ordered[listing] = paths[listing]
            ordered.update((p, paths[p]) for p in enqueue)
        ordered.setdefault(path, operations)
    return ordered


def _add_model(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    """The validation schema (what a client sends), its nested models as components."""
    schema = model.model_json_schema(ref_template=_REF, mode="validation")
    for name, nested in schema.pop("$defs", {}).items():
        schemas.setdefault(name, nested)
    schemas[model.__name__] = schema


def _for_queue(
    generic: dict[str, Any], queue: QueueName, body: str | dict[str, Any], example: Any
) -> dict[str, Any]:
    operation = copy.deepcopy(generic)
    operation["operationId"] = f"{generic['operationId']}_{queue.name.lower()}"
    operation["summary"] = f"{generic['summary']} ({queue.value})"
    operation["parameters"] = [
        p for p in operation.get("parameters", []) if p.get("name") != "queue"
    ]
    if not operation["parameters"]:
        del operation["parameters"]
    operation["responses"].pop("404", None)
    schema = {"$ref": _REF.format(model=body)} if isinstance(body, str) else body
    operation["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": schema, "example": example}},
    }
    return operation


def _document_errors(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    extra: dict[str, str] = {}
    if operation.get("security"):
        extra |= _AUTHENTICATED
    if operation.get("parameters"):
        extra |= _WITH_PARAMS
    if any(p.get("in") == "path" for p in operation.get("parameters", [])):
        extra |= _WITH_PATH_PARAMS
    if operation.get("requestBody"):
        extra |= _WITH_BODY
    for code, description in extra.items():
        responses.setdefault(code, {"description": description})
    for code, response in responses.items():
        if int(code) >= 400:
            response["content"] = {
                "application/json": {"schema": {"$ref": _REF.format(model="Error")}}
            }
            if code == "422" and response.get("description") == "Validation Error":
                response["description"] = extra.get("422", "The request does not validate.")
