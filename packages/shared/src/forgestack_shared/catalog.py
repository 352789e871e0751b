"""Binds each queue to its payload model, result model and default options: the one registry
both the API (validation before enqueue) and the worker (validation before run) read."""

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from forgestack_queue.limits import NO_LIMITS, QueueLimits
from forgestack_queue.options import Backoff, JobOptions, KeepJobs
from pydantic import BaseModel

from .jobs.audit_log import AuditLogData, AuditLogResult
from .jobs.my_new_job import MyNewJobData, MyNewJobResult
from .jobs.notification_email import NotificationEmailData, NotificationEmailResult
from .jobs.webhook_delivery import WebhookDeliveryData, WebhookDeliveryResult
from .queues import QueueName

DataT = TypeVar("DataT", bound=BaseModel)
ResultT = TypeVar("ResultT", bound=BaseModel)

KEEP_COMPLETED = KeepJobs(age=3600, count=1000)
"""Completed jobs stay an hour (at most 1,000 per queue) so callers can read their result."""
KEEP_FAILED = KeepJobs(age=7 * 24 * 3600, count=10_000)
"""Failed jobs stay a week for inspection and retry, as the original pattern recommends."""


@dataclass(frozen=True, slots=True)
class QueueSpec(Generic[DataT, ResultT]):
    name: QueueName
    data_model: type[DataT]
    result_model: type[ResultT]
    defaults: JobOptions
    limits: QueueLimits = NO_LIMITS
    """Enforced by every worker's claim (a rate limit, a fleet-wide concurrency cap), e.g.
    `QueueLimits(rate_limit=RateLimit(max=10, duration_ms=1000), concurrency=3)`, and the same
    for each organisation's jobs on their own, e.g. `per_owner=OwnerLimits(concurrency=2)`; an
    operator may override them at run time (`PUT /api/v1/queues/{queue}/limits`)."""


MY_NEW_JOB = QueueSpec(
    name=QueueName.MY_NEW_JOB,
    data_model=MyNewJobData,
    result_model=MyNewJobResult,
    defaults=JobOptions(
        attempts=3,
        backoff=Backoff(type="exponential", delay=1000),
        remove_on_complete=KEEP_COMPLETED,
        remove_on_fail=KEEP_FAILED,
        timeout=300_000,
    ),
)

NOTIFICATION_EMAIL = QueueSpec(
    name=QueueName.NOTIFICATION_EMAIL,
    data_model=NotificationEmailData,
    result_model=NotificationEmailResult,
    # SMTP 4xx answers (greylisting, full mailbox, rate limits) clear in minutes, not seconds:
    # 30 s, 1 min, 2 min, 4 min between the five tries.
    defaults=JobOptions(
        attempts=5,
        backoff=Backoff(type="exponential", delay=30_000, jitter=0.2),
        remove_on_complete=KEEP_COMPLETED,
        remove_on_fail=KEEP_FAILED,
        timeout=120_000,
    ),
)

AUDIT_LOGS = QueueSpec(
    name=QueueName.AUDIT_LOGS,
    data_model=AuditLogData,
    result_model=AuditLogResult,
    # An audit event must survive a database outage: 12 tries, 1 s doubling to ~34 min, about an
    # hour in all, jittered so a backlog does not retry in lockstep; then the failed store (a week).
    defaults=JobOptions(
        attempts=12,
        backoff=Backoff(type="exponential", delay=1000, jitter=0.25),
        remove_on_complete=KEEP_COMPLETED,
        remove_on_fail=KEEP_FAILED,
        timeout=30_000,
    ),
)

WEBHOOK_DELIVERY = QueueSpec(
    name=QueueName.WEBHOOK_DELIVERY,
    data_model=WebhookDeliveryData,
    result_model=WebhookDeliveryResult,
    # The retry schedule comes from the endpoint or WEBHOOK_RETRY_SCHEDULE_S when the delivery is
    # enqueued (see webhook_job_options); this is the floor for a job added without it. The timeout
    # is far above the HTTP timeout, which the handler enforces itself.
    defaults=JobOptions(
        attempts=10,
        backoff=Backoff(schedule=[5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000]),
        remove_on_complete=KEEP_COMPLETED,
        remove_on_fail=KEEP_FAILED,
        timeout=120_000,
    ),
)

SPECS: tuple[QueueSpec[Any, Any], ...] = (
    MY_NEW_JOB,
    NOTIFICATION_EMAIL,
    AUDIT_LOGS,
    WEBHOOK_DELIVERY,
)
CATALOG: dict[QueueName, QueueSpec[Any, Any]] = {spec.name: spec for spec in SPECS}


def webhook_job_options(schedule_s: list[int], job_id: str) -> JobOptions:
    """One try, then one retry per schedule entry: the delivery stops when the schedule ends, not
    at an expiry. Seconds in, milliseconds out (the job layer's unit)."""
    return JobOptions(
        job_id=job_id,
        attempts=len(schedule_s) + 1,
        backoff=Backoff(schedule=[s * 1000 for s in schedule_s]),
    )


def spec_for(name: str) -> QueueSpec[Any, Any] | None:
    """Look up a queue by its wire name; None for names the catalog does not know."""
    try:
        return CATALOG[QueueName(name)]
    except ValueError:
        return None
