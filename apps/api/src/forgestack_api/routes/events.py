"""Server-sent events of one queue: its jobs' transitions, progress and log lines, as the scripts
recorded them in the queue's stream. Each event's `id:` is the stream id, so a client that
reconnects with `Last-Event-ID` (browsers do it by themselves) resumes where it left off, for as
long as the stream still holds that id (it keeps about EVENTS_MAX_LEN events per queue).

An organisation's key gets its own jobs' events only, under its own job ids; the operator's gets
all. Reading a queue's events needs the role that reads its jobs."""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from forgestack_queue.events import is_stream_id
from forgestack_shared.queues import QueueName

from ..access import require_read
from ..deps import JobsDep, PrincipalDep
from ..queue_service import QueueService

router = APIRouter(tags=["events"])

KEEPALIVE_MS = 15_000
"""When nothing was sent for this long a keep-alive goes out, so proxies keep the stream open. For
the operator it is the read position as an `id:` line without data (a reconnect skips what was
read); for an organisation it is a comment line: the read position moves with every organisation's
events, so sending it would tell one organisation when the others' jobs move."""
MAX_STREAM_S = 600.0
"""A stream ends after this long and the client reconnects (EventSource does, with Last-Event-ID,
missing nothing): the key is checked again then, so a revoked key stops receiving."""


def _start(header: str | None, query: str | None) -> str | None:
    start = header if header is not None else query
    if start is not None and not is_stream_id(start):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "Last-Event-ID and last_id take an event id as sent (e.g. 1764470000000-0)",
        )
    return start


async def _sse(jobs: QueueService, queue: QueueName, start: str | None) -> AsyncIterator[str]:
    cursor = await jobs.event_cursor(queue, start)
    operator = jobs.owner is None
    yield "retry: 2000\n\n"
    loop = asyncio.get_running_loop()
    ends = loop.time() + MAX_STREAM_S
    quiet_since = loop.time()
    while (left_ms := int((ends - loop.time()) * 1000)) > 0:
        cursor, events = await jobs.events(queue, cursor, min(KEEPALIVE_MS, left_ms))
        for event in events:
            data = event.model_dump_json(exclude_none=True)
            yield f"id: {event.id}\nevent: {event.event}\ndata: {data}\n\n"
        if events:
            quiet_since = loop.time()
        elif loop.time() - quiet_since >= KEEPALIVE_MS / 1000:
            quiet_since = loop.time()
            yield f"id: {cursor}\n\n" if operator else ": keep-alive\n\n"
    # For the operator an id without data moves Last-Event-ID on without an event: the reconnect
    # resumes after every event read here. An organisation resumes after its own last event (the
    # stream is re-read from there, filtered again), and learns nothing of the others' activity.
    if operator:
        yield f"id: {cursor}\n\n"


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
