"""A job's transitions as the scripts pack them (one 'hist' field, see `remember` in
lua/_prelude.lua): compact in Redis, decoded here for readers.

An entry is `<code><attempt>:<ms since created_at>[:<note>]`, entries joined by '|', the last 50
kept. The add itself has no entry: created_at is it."""

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

HistoryEvent = Literal[
    "added",
    "delayed",
    "started",
    "completed",
    "failed",
    "retry",
    "lease_lost",
    "released",
    "manual_retry",
    "promoted",
]

_CODES: dict[str, HistoryEvent] = {
    "d": "delayed",
    "s": "started",
    "c": "completed",
    "f": "failed",
    "r": "retry",
    "l": "lease_lost",
    "x": "released",
    "m": "manual_retry",
    "p": "promoted",
}


class HistoryEntry(BaseModel):
    model_config = ConfigDict(defer_build=True)  # record readers only, as JobRecord

    event: HistoryEvent
    at: datetime
    attempt: int | None = None
    """The attempt the transition belongs to (started, completed, failed, retry, ...)."""
    note: str | None = None
    """A failure's reason (first 80 bytes; the full one is in failed_reason while it is the
    latest), a delay's length in ms, or why an attempt was released (released, rate limited)."""


def decode_history(
    packed: str | None, created_at: datetime | None
) -> tuple[list[HistoryEntry], bool]:
    """The entries, oldest first, and whether any entry was unreadable (those are skipped)."""
    if created_at is None:
        return [], False  # offsets need created_at; its own problem is reported already
    entries = [HistoryEntry(event="added", at=created_at)]
    bad = False
    for raw in (packed or "").split("|") if packed else []:
        if not raw:
            # An empty entry holds nothing to lose: finish.lua before a1eee60 opened a history
            # whose first start it moved (prefetch) with '|'; those records read as sound.
            continue
        head, _, rest = raw.partition(":")
        offset, _, note = rest.partition(":")
        event = _CODES.get(head[:1])
        try:
            attempt = int(head[1:]) if len(head) > 1 else None
            at = created_at + timedelta(milliseconds=int(offset))
        except (ValueError, OverflowError):
            bad = True
            continue
        if event is None:
            bad = True
            continue
        entries.append(HistoryEntry(event=event, at=at, attempt=attempt, note=note or None))
    return entries, bad


def latest_start(entries: list[HistoryEntry]) -> datetime | None:
    """When the latest attempt started; None before the first and after an operator's retry
    (which starts the job over). The scripts keep no other record of it."""
    at = None
    for entry in entries:
        if entry.event == "started":
            at = entry.at
        elif entry.event == "manual_retry":
            at = None
    return at


def last_move(entries: list[HistoryEntry]) -> datetime | None:
    """The latest transition after the add: for a completed or failed job, its end (every move
    to either state writes an entry, and none follows until a retry)."""
    return entries[-1].at if len(entries) > 1 else None
