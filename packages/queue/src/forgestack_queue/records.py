"""What readers (API, dashboard) see of a job: decoded from its Redis hash in one place.

Decoding never raises: a record that is corrupt, partial or out of range (a field overwritten by
hand, a key that is not a hash, a date past year 9999) comes back flagged `corrupt` with the
reason, so one bad record shows as such instead of failing a whole page.

The hash holds only what cannot be derived, since each field costs ~50 bytes of Redis memory:
- always: queue, state, data, created_at, opts (only the options that differ from JobOptions'
  defaults); name, priority and meta only when not the queue's name, 0 and none;
- delayed: delay_until and ord (add order), both dropped once the job is due;
- once it has run or waited: attempts_started and hist (the packed history, see history.py);
- active: token (the attempt's fence, dropped when the attempt ends); completed: result;
- failed, and waiting or delayed for a retry: failed_reason, stacktrace (none for a cancel);
- when set: progress, cancel.
Derived instead: the id and the owner from the key (`<owner>~<local id>`), attempts_made from
attempts_started and the state, processed_at (the latest start) and finished_at (a finished
job's last transition) from the history. Records written before this layout also carry owner,
token, attempts_made, processed_at and finished_at fields; they read as before."""

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .history import HistoryEntry, decode_history, last_move, latest_start
from .options import JobOptions
from .owners import local_id, owner_of
from .serializer import loads
from .states import JobState

_MAX_MS = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp() * 1000)
_REQUIRED = ("queue", "state", "data")
"""The fields every add writes; the others have defaults (see _add.lua)."""


class JobRecord(BaseModel):
    # Its validator is built on first read, not at import: a worker's claims never build one, and
    # building it was 7 ms of the worker's start-up to its first claim.
    model_config = ConfigDict(defer_build=True)

    id: str
    """As the reader names it: the local id for an owner-bound queue, else the full id."""
    queue: str
    name: str
    state: JobState
    data: Any
    options: JobOptions
    priority: int
    attempts_made: int
    """Attempts that ended (completed, failed, retried or lost); a running one is not counted."""
    owner: str | None = None
    result: Any = None
    failed_reason: str | None = None
    stacktrace: str | None = None
    created_at: datetime | None = None
    processed_at: datetime | None = None
    finished_at: datetime | None = None
    delay_until: datetime | None = None
    progress: Any = Field(default=None, description="The last `Job.update_progress` value.")
    logs: list[str] | None = Field(
        default=None,
        description="The handler's last log lines (`Job.log`), oldest first; only read for one "
        "job by id, None in listings.",
    )
    history: list[HistoryEntry] = Field(
        default_factory=list,
        description="Transitions, oldest first: added, delays, each attempt's start and end.",
    )
    corrupt: str | None = Field(
        default=None, description="Why the stored record is unreadable in part; None when sound."
    )


class _Decoder:
    """Reads fields of one hash, collecting what is wrong instead of raising."""

    def __init__(self, raw: dict[bytes, bytes]) -> None:
        self.fields = {k.decode("utf-8", "replace"): v for k, v in raw.items()}
        self.problems = [f"missing field {name}" for name in _REQUIRED if name not in self.fields]

    def text(self, key: str) -> str | None:
        value = self.fields.get(key)
        return None if value is None else value.decode("utf-8", "replace")

    def integer(self, key: str) -> int:
        value = self.fields.get(key)
        if value is None:
            return 0
        try:
            return int(value)
        except ValueError:
            self.problems.append(f"{key} is not an integer")
            return 0

    def ms(self, key: str) -> datetime | None:
        value = self.fields.get(key)
        if not value:
            return None
        try:
            ms = int(value)
        except ValueError:
            self.problems.append(f"{key} is not a timestamp")
            return None
        if not 0 <= ms <= _MAX_MS:
            self.problems.append(f"{key} is out of range")
            return None
        return datetime.fromtimestamp(ms / 1000, tz=UTC)

    def json(self, key: str) -> Any:
        value = self.fields.get(key)
        if value is None:
            return None
        try:
            return loads(value)
        except ValueError:
            # A poisoned payload is shown as text so an operator can see what was written.
            self.problems.append(f"{key} is not JSON")
            return value.decode("utf-8", "replace")

    def attempts_made(self, state: JobState) -> int:
        """Every attempt started has ended unless the job is active, when the latest still runs
        (claim.lua counts starts; an attempt released unrun is uncounted)."""
        if "attempts_started" not in self.fields:
            return self.integer("attempts_made")
        started = self.integer("attempts_started")
        return max(started - 1, 0) if state is JobState.ACTIVE else started

    def state(self, listed: JobState | None) -> JobState:
        text = self.text("state")
        try:
            return JobState(text or "")
        except ValueError:
            if text is not None:
                self.problems.append(f"unknown state {text!r}")
            return listed or JobState.FAILED

    def options(self) -> JobOptions:
        try:
            return JobOptions.model_validate_json(self.fields.get("opts", b"{}"))
        except ValidationError:
            self.problems.append("options do not validate")
            return JobOptions()


def record_from_hash(
    raw: dict[bytes, bytes],
    *,
    owner: str | None = None,
    listed_id: str | None = None,
    listed_state: JobState | None = None,
) -> JobRecord:
    """`owner` names the reader (ids come back local to it); `listed_id`/`listed_state` say where
    a listing found the job, which stand in for fields the record lacks."""
    d = _Decoder(raw)
    full = d.text("id") or listed_id or ""
    queue = d.text("queue") or ""
    state = d.state(listed_state)
    record = JobRecord(
        id=local_id(owner, full) or full,
        queue=queue,
        name=d.text("name") or queue,
        state=state,
        data=d.json("data"),
        options=d.options(),
        priority=d.integer("priority"),
        attempts_made=d.attempts_made(state),
        owner=d.text("owner") or owner_of(full),
        result=d.json("result"),
        failed_reason=d.text("failed_reason"),
        stacktrace=d.text("stacktrace"),
        created_at=d.ms("created_at"),
        processed_at=d.ms("processed_at"),
        finished_at=d.ms("finished_at"),
        delay_until=d.ms("delay_until"),
        progress=d.json("progress"),
    )
    record.history, bad = decode_history(d.text("hist"), record.created_at)
    if bad:
        d.problems.append("history has unreadable entries")
    # The history's start wins over a processed_at field: an older layout's field is not
    # updated by later attempts. A finished_at field (older layouts, quarantined records) is only
    # ever a finished job's own.
    record.processed_at = latest_start(record.history) or record.processed_at
    if "finished_at" not in d.fields and state in (JobState.COMPLETED, JobState.FAILED):
        record.finished_at = last_move(record.history)
    if d.problems:
        record.corrupt = "; ".join(d.problems)
    return record


def unreadable_record(
    job_id: str, queue: str, state: JobState, reason: str, *, owner: str | None = None
) -> JobRecord:
    """A listed id whose key is not a job hash at all (overwritten with another Redis type)."""
    return JobRecord(
        id=local_id(owner, job_id) or job_id,
        queue=queue,
        name=queue,
        state=state,
        data=None,
        options=JobOptions(),
        priority=0,
        attempts_made=0,
        owner=owner,
        corrupt=reason,
    )
