"""Live updates as server-sent events: the overview's numbers (and, with `?job=`, one job's state
and rendered details) whenever they change, so the pages update without reloads.

Polled from Redis once a second per open page: cheap (a few ZCARD/ZCOUNT per queue) and right
for the handful of operators a dashboard has. When the operations branch's events stream lands,
this loop can relay it instead; the event names and payloads the page script reads stay the same."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from forgestack_queue.errors import JobNotFoundError

from ..access import access_of
from .deps import QueuesDep, UserDep
from .overview import overview
from .pages import job_actions_for
from .rendering import DashboardRoute, templates

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

POLL_S = 1.0
HEARTBEAT_S = 15.0
MAX_STREAM_S = 600.0
"""The browser reconnects by itself; a bounded stream re-checks the session's key now and then."""


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, default=str)}\n\n"


@router.get("/events")
async def events(
    request: Request,
    user: UserDep,
    queues: QueuesDep,
    job: Annotated[str, Query(max_length=300)] = "",
) -> StreamingResponse:
    async def stream() -> AsyncIterator[str]:
        last: dict[str, str] = {}
        idle = 0.0
        loop = asyncio.get_running_loop()
        started = loop.time()
        yield "retry: 2000\n\n"
        while loop.time() - started < MAX_STREAM_S and not await request.is_disconnected():
            payloads: dict[str, Any] = {"overview": [q.as_json() for q in await overview(queues)]}
            if job:
                payloads["job"] = await _job_payload(job)
            sent = False
            for name, data in payloads.items():
                text = _event(name, data)
                if last.get(name) != text:
                    last[name] = text
                    sent = True
                    yield text
            idle = 0.0 if sent else idle + POLL_S
            if idle >= HEARTBEAT_S:
                idle = 0.0
                yield ": heartbeat\n\n"
            await asyncio.sleep(POLL_S)

    async def _job_payload(job_id: str) -> dict[str, Any]:
        try:
            record = await queues.get_job(job_id)
        except JobNotFoundError:
            return {"state": "missing", "html": ""}
        if not user.principal.at_least(access_of(record.queue).read):
            return {"state": "missing", "html": ""}
        html = templates.get_template("_job_detail.html").render(
            job=record, user=user, actions=job_actions_for(user, record.state)
        )
        return {"id": record.id, "state": record.state.value, "html": html}

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
