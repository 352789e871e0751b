"""Server-sent events of one queue: its jobs' transitions, progress and log lines, as the scripts
recorded them in the queue's stream. Each event's `id:` is the stream id, so a client that
reconnects with `Last-Event-ID` (browsers do it by themselves) resumes where it left off, for as
long as the stream still holds that id (it keeps about EVENTS_MAX_LEN events per queue).

An organisation's key gets its own jobs' events only, under its own job ids; the operator's gets
all. Reading a queue's events needs the role that reads its jobs."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from forgestack_queue.events import STREAM_ID
from forgestack_shared.queues import QueueName

from ..access import require_read
from ..deps import JobsDep, PrincipalDep
from ..queue_service import QueueService

router = APIRouter(tags=["events"])

KEEPALIVE_MS = 15_000
"""A comment line this often when nothing is sent, so proxies keep an idle stream open."""


def _start(header: str | None, query: str | None) -> str | None:
    start = header if header is not None else query
    if start is not None and not STREAM_ID.fullmatch(start):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "Last-Event-ID and last_id take an event id as sent (e.g. 1764470000000-0)",
        )
    return start


async def _sse(jobs: QueueService, queue: QueueName, start: str | None) -> AsyncIterator[str]:
    cursor = await jobs.event_cursor(queue, start)
    yield "retry: 2000\n\n"
    while True:
        cursor, events = await jobs.events(queue, cursor, KEEPALIVE_MS)
        if not events:
            yield ": keep-alive\n\n"
        for event in events:
            data = event.model_dump_json(exclude_none=True)
            yield f"id: {event.id}\nevent: {event.event}\ndata: {data}\n\n"


@router.get(
    "/events",
    summary="Stream a queue's job events (text/event-stream; resume with Last-Event-ID)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "An endless event stream."},
        400: {"description": "The id to resume after is not an event id."},
        404: {"description": "No such queue."},
    },
)
async def stream_events(
    jobs: JobsDep,
    principal: PrincipalDep,
    queue: str,
    last_id: Annotated[
        str | None, Query(description="Resume after this event id (Last-Event-ID wins).")
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    name = jobs.known_queue(queue)
    require_read(principal, name)
    start = _start(last_event_id, last_id)
    return StreamingResponse(
        _sse(jobs, name, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
