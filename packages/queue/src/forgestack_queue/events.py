"""Reading a queue's event stream (written by the scripts, see `emit` in lua/_prelude.lua) as an
owner sees it: an organisation only ever gets its own jobs' events, under its own job ids."""

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis

from .cluster_wait import first_of
from .keys import QueueKeys
from .owners import local_id
from .serializer import loads

STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
"""A Redis stream id, as sent in SSE `id:` lines and taken back as Last-Event-ID."""
_U64_MAX = 2**64 - 1
EVENT_RESULT_MAX_BYTES = 16 * 1024
"""The largest result a `completed` event carries (that of a job removed as it completes, for
waiters): each event is copied to every reader of the stream, and the stream is kept whole in
Redis memory. A larger result leaves only its size in the event."""


def is_stream_id(text: str) -> bool:
    """Redis refuses an id whose parts pass 64 bits, and a stream would only fail on it after its
    200 went out: checked before, so such an id is the client's 400."""
    if not STREAM_ID.fullmatch(text):
        return False
    ms, seq = text.split("-")
    return int(ms) <= _U64_MAX and int(seq) <= _U64_MAX


class QueueEvent(BaseModel):
    model_config = ConfigDict(defer_build=True)  # readers only: the scripts write events

    id: str
    """The stream's id: monotonic per queue; resume after it to miss nothing still kept."""
    event: str
    """added, waiting (back to waiting: promoted, due, released), active, progress, log,
    completed, failed, retrying, delayed or removed."""
    queue: str
    job_id: str
    at: datetime
    """When the event was written (the stream id's server time)."""
    attempt: int | None = None
    progress: Any = None
    line: str | None = None
    reason: str | None = None
    delayed_until: datetime | None = None


def _event(
    queue: str, event_id: str, fields: dict[bytes, bytes], owner: str | None
) -> QueueEvent | None:
    f = {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}
    if owner is not None and f.get("o") != owner:
        return None
    job_id = local_id(owner, f.get("j", ""))
    if job_id is None:
        return None
    due = f.get("due")
    progress = f.get("p")
    return QueueEvent(
        id=event_id,
        event=f.get("e", ""),
        queue=queue,
        job_id=job_id,
        at=datetime.fromtimestamp(int(event_id.split("-")[0]) / 1000, tz=UTC),
        attempt=int(f["a"]) if f.get("a", "").isdigit() else None,
        progress=loads(progress) if progress is not None else None,
        line=f.get("l"),
        reason=f.get("r"),
        delayed_until=datetime.fromtimestamp(int(due) / 1000, tz=UTC)
        if due and due.isdigit()
        else None,
    )


async def last_event_id(redis: Redis, keys: QueueKeys) -> str:
    """Where a reader that wants only new events starts ('0-0' for an empty stream)."""
    last = await redis.xrevrange(keys.events, count=1)
    return str(last[0][0].decode()) if last else "0-0"


async def read_events(
    redis: Redis,
    keys: QueueKeys,
    after: str,
    *,
    owner: str | None,
    block_ms: int,
    count: int = 500,
) -> tuple[str, list[QueueEvent]]:
    """Events after `after` (blocking up to `block_ms` when there are none) that `owner` may see,
    and the id to read after next time. Events of other owners still move the cursor on."""
    cursors, seen = await read_queues(
        redis, [keys], {keys.queue: after}, owner=owner, block_ms=block_ms, count=count
    )
    return cursors[keys.queue], seen


async def last_event_ids(redis: Redis, queues: Sequence[QueueKeys]) -> dict[str, str]:
    """`last_event_id` of several queues in one round trip, by queue name."""
    async with redis.pipeline(transaction=False) as pipe:
        for keys in queues:
            pipe.xrevrange(keys.events, count=1)
        replies = await pipe.execute()
    return {
        keys.queue: last[0][0].decode() if last else "0-0"
        for keys, last in zip(queues, replies, strict=True)
    }


async def read_queues(
    redis: Redis,
    queues: Sequence[QueueKeys],
    after: Mapping[str, str],
    *,
    owner: str | None,
    block_ms: int,
    count: int = 500,
) -> tuple[dict[str, str], list[QueueEvent]]:
    """`read_events` over several queues with one XREAD BLOCK (one connection, one wake-up for
    whichever queue moves first). `after` and the returned cursors are keyed by queue name."""
    by_stream = {keys.events: keys for keys in queues}
    cursors = {keys.queue: after[keys.queue] for keys in queues}
    streams: dict[Any, Any] = {keys.events: cursors[keys.queue] for keys in queues}
    if len(streams) > 1 and any(keys.tagged for keys in queues):
        reply = await _read_spread(redis, streams, count, block_ms)
    else:
        reply = await redis.xread(streams, count=count, block=block_ms)
    seen: list[QueueEvent] = []
    for stream, entries in reply or []:
        keys = by_stream[stream.decode() if isinstance(stream, bytes) else stream]
        for raw_id, fields in entries:
            cursor = raw_id.decode()
            cursors[keys.queue] = cursor
            event = _event(keys.queue, cursor, fields, owner)
            if event is not None:
                seen.append(event)
    return cursors, seen


async def _read_spread(
    redis: Redis, streams: dict[Any, Any], count: int, block_ms: int
) -> list[Any]:
    """XREAD over streams in different cluster slots: one stream per call. What is there already
    comes back at once; else the first stream to move wakes the read, and the others' reads are
    cancelled before they consumed anything (a cursor moves only with a reply)."""
    items = list(streams.items())
    replies = [await redis.xread(dict([item]), count=count) for item in items]
    ready = [entry for reply in replies for entry in reply or []]
    if ready or not block_ms:
        return ready
    woken = await first_of(
        [redis.xread(dict([item]), count=count, block=block_ms) for item in items]
    )
    return [entry for reply in woken for entry in reply or []]
