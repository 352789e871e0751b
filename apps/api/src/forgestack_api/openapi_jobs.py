"""Job responses typed per state in the OpenAPI document: `Job` is a union of `JobWaiting`,
`JobDelayed`, `JobActive`, `JobCompleted` and `JobFailed`, discriminated by `state`, each the
job record (`JobRecord`, unchanged) plus what that state guarantees and an example.

Only the document changes: the wire format is the record it always was, so no client breaks and
a generated one gets a class per state. The guarantees are the job layer's (the scripts write
them in the same call that moves the job): a delayed job has `delay_until`, an active one
`processed_at`, a completed one `processed_at` and `finished_at`, a failed one `finished_at` and
`failed_reason`. A record the reader flags `corrupt` may lack them (they read as null), so each
guarantee holds when `corrupt` is null (JSON Schema `if`/`then`)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from forgestack_queue.history import HistoryEntry
from forgestack_queue.options import JobOptions
from forgestack_queue.records import JobRecord
from forgestack_queue.states import JobState

_REF = "#/components/schemas/{model}"
_WHEN = {"type": "string", "format": "date-time"}

GUARANTEED: dict[JobState, dict[str, dict[str, Any]]] = {
    JobState.WAITING: {},
    JobState.DELAYED: {"delay_until": _WHEN | {"description": "When it becomes waiting."}},
    JobState.ACTIVE: {"processed_at": _WHEN | {"description": "When this attempt started."}},
    JobState.COMPLETED: {
        "processed_at": _WHEN,
        "finished_at": _WHEN,
        "result": {"description": "The handler's result (the queue's result model)."},
    },
    JobState.FAILED: {
        "finished_at": _WHEN,
        "failed_reason": {
            "type": "string",
            "description": "Why: the last attempt's error, `cancelled`, a lost worker's lease, ...",
        },
    },
}
"""Per state: the fields a sound record always carries, with their non-null schema."""

_SUMMARY = {
    JobState.WAITING: "Runnable, in run order (priority, then first in).",
    JobState.DELAYED: "Runnable from `delay_until` (a delay, or a retry's backoff).",
    JobState.ACTIVE: "An attempt is running on a worker.",
    JobState.COMPLETED: "Done: `result` holds what the handler returned.",
    JobState.FAILED: "Failed for good (attempts spent, unrecoverable, cancelled): see "
    "`failed_reason` and `stacktrace`.",
}


def variant_name(state: JobState) -> str:
    return f"Job{state.value.capitalize()}"


def install_job_states(schemas: dict[str, Any], paths: dict[str, Any]) -> None:
    """Adds the union and its variants, and points every job answer at the union."""
    _point_at_union(paths)
    for name in ("JobPage", "JobWaitResult"):
        _point_at_union(schemas[name])
    for state in JobState:
        schemas[variant_name(state)] = _variant(state)
    schemas["Job"] = {
        "title": "Job",
        "description": "A job as its owner reads it; its shape by `state`. Every variant is the "
        "`JobRecord` (all fields always present, null when unset) with its state's guarantees.",
        "oneOf": [{"$ref": _REF.format(model=variant_name(s))} for s in JobState],
        "discriminator": {
            "propertyName": "state",
            "mapping": {s.value: _REF.format(model=variant_name(s)) for s in JobState},
        },
    }


def _variant(state: JobState) -> dict[str, Any]:
    fields = GUARANTEED[state]
    schema: dict[str, Any] = {
        "title": variant_name(state),
        "description": _SUMMARY[state],
        "allOf": [{"$ref": _REF.format(model="JobRecord")}],
        "properties": {"state": {"const": state.value}},
        "required": ["state"],
        "examples": [example(state)],
    }
    if fields:
        schema["if"] = {"properties": {"corrupt": {"type": "null"}}}
        schema["then"] = {"properties": fields, "required": sorted(fields)}
    return schema


def _point_at_union(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("$ref") == _REF.format(model="JobRecord"):
            node["$ref"] = _REF.format(model="Job")
        for value in node.values():
            _point_at_union(value)
    elif isinstance(node, list):
        for value in node:
            _point_at_union(value)


def example(state: JobState) -> dict[str, Any]:
    """A record as GET /api/v1/jobs/{id} answers it in `state` (built from the model, so its
    shape is the serialised record's)."""
    added = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    started = added + timedelta(seconds=2)
    ended = started + timedelta(milliseconds=850)
    history = [HistoryEntry(event="added", at=added)]
    fields: dict[str, Any] = {}
    if state is JobState.DELAYED:
        history.append(HistoryEntry(event="delayed", at=added, note="60000"))
        fields = {"delay_until": added + timedelta(minutes=1)}
    elif state is not JobState.WAITING:
        history.append(HistoryEntry(event="started", at=started, attempt=1))
        fields = {"processed_at": started}
    if state is JobState.ACTIVE:
        fields |= {"progress": 40, "logs": ["rendered the template"]}
    elif state is JobState.COMPLETED:
        history.append(HistoryEntry(event="completed", at=ended, attempt=1))
        fields |= {"finished_at": ended, "attempts_made": 1, "result": {"message_id": "<a@b>"}}
    elif state is JobState.FAILED:
        reason = "SMTPRecipientsRefused: 550 no such user"
        history.append(HistoryEntry(event="failed", at=ended, attempt=1, note=reason))
        fields |= {
            "finished_at": ended,
            "attempts_made": 1,
            "failed_reason": reason,
            "stacktrace": "Traceback (most recent call last):\n  ...",
        }
    record = JobRecord(
        id="4f6c1d2e9a8b4c7d",
        queue="notification-email",
        name="notification-email",
        state=state,
        data={"to": "jane@example.com", "subject": "Welcome aboard", "template": "welcome"},
        options=JobOptions(attempts=5, priority=1),
        priority=1,
        owner="6f1c2a4e-8b7d-4c3e-9a5f-2d1e0b9c8a7f",
        created_at=added,
        history=history,
        **({"attempts_made": 0} | fields),
    )
    return record.model_dump(mode="json")
