"""Enqueueing into a queue, one job or a batch: the API's busiest routes, served by
`LeanJsonRoute` (see there) and answering with JSON they serialise themselves.

Added to the app itself (`install_enqueue`), not through an included router: FastAPI matches an
included router's routes through its router twice per request, a plain route once."""

from typing import Any

from fastapi import FastAPI, Response, status
from forgestack_queue.producer import AddResult
from pydantic import TypeAdapter

from ..access import require_enqueue
from ..caller import BEARER_SECURITY, CallerDep
from ..lean_route import LeanJsonRoute
from ..schemas import BulkEnqueueRequest, EnqueuedJob, EnqueueRequest
from .queues import FORBIDDEN, UNKNOWN_QUEUE

_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"description": "Data or options do not validate; `detail` lists each field."}
}
_ID_IN_USE: dict[int | str, dict[str, Any]] = {
    409: {"description": "`options.job_id` names a job of another queue."}
}
_JOB_LIST = TypeAdapter(list[EnqueuedJob])


async def enqueue(queue: str, body: EnqueueRequest, caller: CallerDep) -> Response:
    require_enqueue(caller.principal, caller.jobs.known_queue(queue))
    # Its `job.enqueued` event is written with the job, in the same script call.
    result = await caller.jobs.add_raw(
        queue, body.data, body.options, then=caller.audit.job_added(queue)
    )
    job = _enqueued(queue, result)
    return _json(job.__pydantic_serializer__.to_json(job), 202 if result.created else 200)


async def enqueue_bulk(queue: str, body: BulkEnqueueRequest, caller: CallerDep) -> Response:
    require_enqueue(caller.principal, caller.jobs.known_queue(queue))
    jobs = [(job.data, job.options) for job in body.jobs]
    # Its `jobs.enqueued` event (how many were new; none when none was) is written with the jobs.
    results = await caller.jobs.add_bulk_raw(queue, jobs, then=caller.audit.jobs_added(queue))
    return _json(_JOB_LIST.dump_json([_enqueued(queue, result) for result in results]), 202)


def install_enqueue(app: FastAPI, prefix: str) -> None:
    """Before any router is included: routes are tried in order, these first, ahead of the
    documentation routes FastAPI adds when the app is made (five matches a request saved)."""
    before = len(app.router.routes)
    common: dict[str, Any] = {
        "methods": ["POST"],
        "status_code": status.HTTP_202_ACCEPTED,
        "tags": ["queues"],
        "openapi_extra": BEARER_SECURITY,
        "route_class_override": LeanJsonRoute,
    }
    app.router.add_api_route(
        f"{prefix}/queues/{{queue}}/jobs",
        enqueue,
        response_model=EnqueuedJob,
        summary="Enqueue one job",
        responses={
            200: {
                "description": "`options.job_id` named an existing job: it is returned, unchanged."
            },
            **UNKNOWN_QUEUE,
            **FORBIDDEN,
            **_INVALID,
            **_ID_IN_USE,
        },
        **common,
    )
    app.router.add_api_route(
        f"{prefix}/queues/{{queue}}/jobs:bulk",
        enqueue_bulk,
        response_model=list[EnqueuedJob],
        summary="Enqueue up to 1,000 jobs at once, all or none",
        responses={**UNKNOWN_QUEUE, **FORBIDDEN, **_INVALID, **_ID_IN_USE},
        **common,
    )
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[:0] = added


def _enqueued(queue: str, result: AddResult) -> EnqueuedJob:
    return EnqueuedJob(id=result.id, queue=queue, state=result.state, created=result.created)


def _json(content: bytes, status_code: int) -> Response:
    """Serialised here: FastAPI's check and dump of the returned model are skipped, and the
    declared `response_model` still documents the answer."""
    return Response(content, status_code=status_code, media_type="application/json")
