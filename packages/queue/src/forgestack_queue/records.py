"""What readers (API, dashboard) see of a job: decoded from its Redis hash in one place."""

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from .options import JobOptions
from .serializer import loads
from .states import JobState


class JobRecord(BaseModel):
    id: str
    queue: str
    name: str
    state: JobState
    data: Any
    options: JobOptions
    priority: int
    attempts_made: int
    result: Any = None
    failed_reason: str | None = None
    stacktrace: str | None = None
    created_at: datetime | None = None
    processed_at: datetime | None = None
    finished_at: datetime | None = None
    delay_until: datetime | None = None


def _ms(raw: dict[str, bytes], key: str) -> datetime | None:
    value = raw.get(key)
    if not value:
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def _text(raw: dict[str, bytes], key: str) -> str | None:
    value = raw.get(key)
    return None if value is None else value.decode("utf-8", "replace")


def _json(raw: dict[str, bytes], key: str) -> Any:
    value = raw.get(key)
    if value is None:
        return None
    try:
        return loads(value)
    except ValueError:
        # A poisoned payload is shown as text so an operator can see what was written.
        return value.decode("utf-8", "replace")


def _options(raw: dict[str, bytes]) -> JobOptions:
    try:
        return JobOptions.model_validate_json(raw.get("opts", b"{}"))
    except ValueError:
        return JobOptions()


def record_from_hash(raw: dict[bytes, bytes]) -> JobRecord:
    fields = {k.decode(): v for k, v in raw.items()}
    return JobRecord(
        id=_text(fields, "id") or "",
        queue=_text(fields, "queue") or "",
        name=_text(fields, "name") or _text(fields, "queue") or "",
        state=JobState(_text(fields, "state") or JobState.FAILED),
        data=_json(fields, "data"),
        options=_options(fields),
        priority=int(fields.get("priority", b"0")),
        attempts_made=int(fields.get("attempts_made", b"0")),
        result=_json(fields, "result"),
        failed_reason=_text(fields, "failed_reason"),
        stacktrace=_text(fields, "stacktrace"),
        created_at=_ms(fields, "created_at"),
        processed_at=_ms(fields, "processed_at"),
        finished_at=_ms(fields, "finished_at"),
        delay_until=_ms(fields, "delay_until"),
    )
