"""Live updates as server-sent events, fed by the queues' event streams: the page gets the
overview's numbers of each queue an event touched and, with `?job=`, that job's state and
rendered details as soon as one of its events is written (one XREAD BLOCK over every queue's
stream per open page, no polling of the job or the counts).

Scoped like GET /api/v1/events: events are read as the session's owner sees them, so another
organisation's jobs neither trigger a push nor appear in one. Each read that brings events of the
followed job pushes it, naming the newest of them (`event`, and `event_id`: the stream's id). What has no event (the pause flag, live
workers, the throughput window sliding on) is re-read every REFRESH_S and sent when it changed.
A reconnect starts from a fresh snapshot, so the stream needs no ids of its own."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from forgestack_queue.errors import JobNotFoundError
from forgestack_queue.events import QueueEvent
from forgestack_queue.records import JobRecord

from ..access import access_of
from ..queue_service import QueueService
from .deps import QueuesDep, UserDep
from .overview import overview
from .pages import job_actions_for
from .rendering import DashboardRoute, templates
from .session import DashboardUser

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

REFRESH_S = 5.0
"""How stale the event-less numbers (paused, workers, the window's rates) may get."""
COALESCE_S = 0.2
"""After a push, events arriving within this long go out together: a busy queue costs an open
page at most a few overview reads a second, whatever the job rate."""
HEARTBEAT_S = 15.0
MAX_STREAM_S = 600.0
"""The browser reconnects by itself; a bounded stream re-checks the session's key now and then."""
_MISSING: dict[str, Any] = {"state": "missing", "html": ""}


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, default=str)}\n\n"


class _Page:
    """What one open page was last sent, so only changes go out."""

    def __init__(self, user: DashboardUser, queues: QueueService, job_id: str) -> None:
        self.user = user
        self.queues = queues
        self.job_id = job_id
        self.sent: dict[str, str] = {}

    async def overview(self, names: Iterable[str] | None = None) -> str | None:
        """An `overview` event with the queues (all when `names` is None) whose numbers changed."""
        changed = []
        for q in await overview(self.queues, names=names):
            data = q.as_json()
            text = json.dumps(data, sort_keys=True, default=str)
            if self.sent.get(q.name) != text:
                self.sent[q.name] = text
                changed.append(data)
        return _event("overview", changed) if changed else None

    async def find_job(self) -> JobRecord | None:
        try:
            record = await self.queues.get_job(self.job_id)
        except JobNotFoundError:
            return None
        readable = self.user.principal.at_least(access_of(record.queue).read)
        return record if readable else None

    async def job(self, cause: QueueEvent | None = None) -> str:
        """The job as it is now; `cause`: the newest of its events just read (the record may
        already be past it: the page shows the record, the event says why it was sent)."""
        record = await self.find_job()
        if record is None:
            payload = _MISSING
        else:
            html = (
                templates()
                .get_template("_job_detail.html")
                .render(
                    job=record, user=self.user, actions=job_actions_for(self.user, record.state)
                )
            )
            payload = {"id": record.id, "state": record.state.value, "html": html}
        if cause is not None:
            payload = payload | {"event": cause.event, "event_id": cause.id}
        return _event("job", payload)


@router.get("/events")
async def events(
    user: UserDep,
    queues: QueuesDep,
    job: Annotated[str, Query(max_length=300)] = "",
) -> StreamingResponse:
    page = _Page(user, queues, job)
    names = [q.value for q in queues.queue_names]
    followed = list(names)
    record = await page.find_job() if job else None
    # Only a job the session may read is followed: no push, not even an event name, for another.
    following = "" if record is None else job
    if record is not None and record.queue not in followed:
        followed.append(record.queue)  # a queue the catalog no longer lists: still its events
    # Read before the snapshot: an event written while it is taken is read again, never lost.
    cursors = await queues.latest_event_ids(followed)

    async def stream() -> AsyncIterator[str]:
        nonlocal cursors
        yield "retry: 2000\n\n"
        first = [await page.overview(), await page.job() if job else None]
        for text in first:
            if text is not None:
                yield text
        clock = asyncio.get_running_loop().time
        ends = clock() + MAX_STREAM_S
        refreshed = quiet_since = clock()
        while (left := ends - clock()) > 0:
            wait = min(left, HEARTBEAT_S, refreshed + REFRESH_S - clock())
            # At least 1 ms: XREAD's BLOCK 0 would wait for ever.
            cursors, seen = await queues.events_of(cursors, max(1, int(wait * 1000)))
            touched: set[str] | None = {e.queue for e in seen if e.queue in names}
            if clock() - refreshed >= REFRESH_S:
                refreshed, touched = clock(), None
            pushes = [await page.overview(touched) if touched != set() else None]
            mine = [e for e in seen if following and e.job_id == following]
            if mine:
                pushes.append(await page.job(mine[-1]))
            sent = [text for text in pushes if text is not None]
            for text in sent:
                yield text
            if sent:
                quiet_since = clock()
                await asyncio.sleep(COALESCE_S)
            elif clock() - quiet_since >= HEARTBEAT_S:
                quiet_since = clock()
                yield ": heartbeat\n\n"

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
