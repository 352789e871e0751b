"""Request and response bodies of the HTTP API (job records come from `forgestack_queue`)."""

from typing import Any, Literal

from forgestack_queue.limits import QueueLimits
from forgestack_queue.options import MAX_PRIORITY
from forgestack_queue.records import JobRecord
from forgestack_queue.states import JobState
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

MAX_BULK = 1000


_EXAMPLE_JOB: JsonDict = {
    "data": {"user_id": "u1", "action": "greet", "payload": {}},
    "options": {"attempts": 5, "backoff": {"type": "exponential", "delay": 1000}, "priority": 1},
}


class EnqueueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE_JOB]})

    data: dict[str, Any] = Field(description="The payload; validated against the queue's model.")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="JobOptions (attempts, backoff, delay ms, priority, remove_on_complete, "
        "remove_on_fail, job_id, timeout ms); unset fields take the queue's defaults.",
    )


class BulkEnqueueRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"jobs": [_EXAMPLE_JOB, _EXAMPLE_JOB]}]}
    )

    jobs: list[EnqueueRequest] = Field(min_length=1, max_length=MAX_BULK)


class EnqueuedJob(BaseModel):
    id: str
    queue: str
    state: JobState
    created: bool = Field(description="False when `options.job_id` named an existing job.")


class JobCounts(BaseModel):
    waiting: int = 0
    delayed: int = 0
    active: int = 0
    completed: int = 0
    failed: int = 0


class QueueSummary(BaseModel):
    name: str
    counts: JobCounts
    paused: bool = Field(description="No worker starts its jobs (operators pause and resume).")
    limits: QueueLimits = Field(description="The limits in force: the catalog's or an override.")
    limits_source: Literal["catalog", "operator"]


class PriorityChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: int = Field(ge=0, lt=MAX_PRIORITY, description="0 runs first, then 1, 2, ...")


class CleanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: JobState
    older_than_s: int = Field(ge=0, description="Remove jobs that finished at least this long ago.")


class CleanResult(BaseModel):
    removed: int


class RetryFailedResult(BaseModel):
    retried: int


class JobWaitResult(BaseModel):
    """`GET /jobs/{id}/wait`: always 200; `finished` says whether the job ended in time."""

    finished: bool = Field(description="False when the timeout ran out first (or it was removed).")
    state: str = Field(
        description="completed, failed, removed, or the job's state when the time ran out."
    )
    result: Any = None
    failed_reason: str | None = None
    job: JobRecord | None = Field(
        default=None, description="The job as it is now; null once removed (e.g. on completion)."
    )
