"""`AuditDep`: how a route records the state change it just made. The event is enqueued (the
audit-logs job writes it), never written inline, so recording works while the database is down;
an unreachable Redis is not swallowed: the error propagates and the caller gets a 503, so nobody
believes an unrecorded change was recorded. The job belongs to the event's organisation."""

import functools
import ipaddress
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from forgestack_queue.followed import FollowUp
from forgestack_queue.options import JobOptions
from forgestack_shared.catalog import AUDIT_LOGS
from forgestack_shared.jobs.audit_log import AuditChanges, AuditLogData

from .auth import Principal
from .deps import PrincipalDep
from .lifespan import resources_of
from .queue_service import QueueService

OPERATOR_ACTOR_ID = "operator"
MAX_USER_AGENT = 500


def audit_job_options(event: AuditLogData) -> JobOptions:
    """The job id derives from the event id, so enqueueing the same event twice keeps one job; ids
    are per owner (the event's organisation), so no organisation can take another's. The table's
    unique `event_id` catches what retention let through."""
    return JobOptions(job_id=f"{AUDIT_LOGS.name.value}:{event.event_id}")


def owner_of(event: AuditLogData) -> str | None:
    """An event's job belongs to its organisation; platform events to nobody (operator only)."""
    return None if event.org_id is None else str(event.org_id)


class AuditRecorder:
    def __init__(self, queues: QueueService, principal: Principal, request: Request) -> None:
        self._queues = queues
        self._principal = principal
        self._request = request

    def event(
        self,
        action: str,
        resource_type: str,
        resource_id: str | None = None,
        *,
        resource_name: str | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AuditLogData:
        """The event for the calling key, with the request's client address and user agent."""
        principal = self._principal
        changes = AuditChanges(before=before, after=after) if before or after else None
        client = self._request.client
        return AuditLogData(
            event_id=uuid.uuid4(),
            org_id=principal.org_id,
            actor_id=principal.key_id or OPERATOR_ACTOR_ID,
            actor_type="api_key",
            actor_name=principal.name,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            resource_name=resource_name,
            changes=changes,
            metadata=(metadata or {})
            # The scope's path, not `request.url.path`: that one builds a whole URL per event.
            | {"method": self._request.method, "path": self._request.scope["path"]},
            ip_address=client.host if client and _is_ip(client.host) else None,
            user_agent=(self._request.headers.get("user-agent") or "")[:MAX_USER_AGENT] or None,
        )

    async def record(
        self,
        action: str,
        resource_type: str,
        resource_id: str | None = None,
        **details: Any,
    ) -> AuditLogData:
        event = self.event(action, resource_type, resource_id, **details)
        await enqueue_audit_event(self._queues, event, keyed=False)
        return event

    def job_added(self, queue: str) -> Callable[[str], FollowUp]:
        """The `job.enqueued` event of a job about to be added to `queue`, as the follower
        `QueueService.add_raw` writes with it: in the job's own script call on a single Redis, so
        the job and its event exist together or not at all, and only when the job is new (an
        idempotent repeat of a custom id records nothing)."""

        def follow_up(job_id: str) -> FollowUp:
            return audit_follow_up(self._queues, self.job_added_event(job_id, queue), keyed=False)

        return follow_up

    def jobs_added(self, queue: str) -> Callable[[int], FollowUp]:
        """The `jobs.enqueued` event of a bulk add to `queue`, as the follower
        `QueueService.add_bulk_raw` writes with the jobs: only when any job is new, with how
        many were (`created`), in the jobs' own script call on a single Redis."""

        def follow_up(created: int) -> FollowUp:
            event = self.event("jobs.enqueued", "queue", queue, metadata={"created": created})
            return audit_follow_up(self._queues, event, keyed=False)

        return follow_up

    def job_added_event(self, job_id: str, queue: str) -> AuditLogData:
        """`event("job.enqueued", "job", job_id, resource_name=queue)`, with the validation done
        once per caller, route and client instead of per request (a sixth of an enqueue's CPU).

        Everything in the event but its id, time and job id is the same for every job one caller
        adds through one route from one client: that part is validated once and kept; each event
        is a copy with those three stamped in. The copy is valid by construction: a fresh uuid4,
        the current time, and an id the job layer accepts (`JobOptions.job_id`'s pattern and
        length, or a generated hex id), which the event's rules (1 to 200 characters, no
        surrounding space, no NUL) all admit."""
        request = self._request
        key = (
            self._principal,
            queue,
            request.method,
            request.scope["path"],
            request.client.host if request.client else None,
            # As much as the event keeps: the key stays small whatever size the header has.
            (request.headers.get("user-agent") or "")[:MAX_USER_AGENT],
        )
        template = _TEMPLATES.get(key)
        if template is None:
            if len(_TEMPLATES) >= MAX_TEMPLATES:
                _TEMPLATES.clear()
            template = self.event("job.enqueued", "job", job_id, resource_name=queue)
            _TEMPLATES[key] = template
        return template.model_copy(
            update={"event_id": uuid.uuid4(), "resource_id": job_id, "occurred_at": _now()}
        )


MAX_TEMPLATES = 1024
"""Validated `job.enqueued` events kept as templates; past this many, all are dropped."""

_TEMPLATES: dict[tuple[Any, ...], AuditLogData] = {}


def _now() -> datetime:
    return datetime.now(UTC)


async def enqueue_audit_event(
    queues: QueueService, event: AuditLogData, *, keyed: bool = True
) -> bool:
    """True when a job was created, False when one for this event already existed.

    `keyed`: the job id derives from the event id (`audit_job_options`), for events a client posts
    and may post again. The API's own events (`AuditRecorder.record`) are made with a fresh event
    id and enqueued once, so they take the catalog's options object as it is, which the job layer
    serialises once rather than per event; the worker stores each event id once either way.

    Straight to the queue handle, not `QueueService.add`: every event is built by the model's own
    validation just before (`AuditRecorder.event`, the audit-logs route) and never changed, so a
    second validation would only cost what the whole enqueue costs again."""
    job = audit_follow_up(queues, event, keyed=keyed)
    result = await job.queue.add(job.data, job.options)
    return result.created


def audit_follow_up(queues: QueueService, event: AuditLogData, *, keyed: bool) -> FollowUp:
    """The audit-logs job of `event`, owned by the event's organisation (`enqueue_audit_event`
    tells what `keyed` means)."""
    owned = queues if queues.owner == owner_of(event) else queues.for_owner(owner_of(event))
    options = audit_job_options(event).merged_over(AUDIT_LOGS.defaults) if keyed else None
    return FollowUp(owned.queue(AUDIT_LOGS.name), event, options or AUDIT_LOGS.defaults)


@functools.lru_cache(maxsize=4096)
def _is_ip(host: str) -> bool:
    """Test clients and proxies can report names ("testclient"); only addresses are recorded."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _recorder(request: Request, principal: PrincipalDep) -> AuditRecorder:
    # Not through JobsDep: FastAPI would walk its dependency tree once more per request.
    queues = resources_of(request).queues.for_owner(principal.owner)
    return AuditRecorder(queues, principal, request)


AuditDep = Annotated[AuditRecorder, Depends(_recorder)]
