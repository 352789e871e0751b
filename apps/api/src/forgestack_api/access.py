"""What each role may do with jobs: the README's roles table, in code.

Reach comes from the key, never from a request: an organisation's key gets a queue handle bound
to its organisation (see `deps.JobsDep`), so another organisation's job is simply not found. What
remains to check here is the role: which queues a caller may enqueue into or read, and who may
retry, remove and clean.
"""

from dataclasses import dataclass

from fastapi import HTTPException, status
from forgestack_shared.queues import QueueName

from .auth import Principal, Role


@dataclass(frozen=True, slots=True)
class QueueAccess:
    enqueue: Role
    """The least role that may add jobs through the generic `/queues/{queue}/jobs` routes."""
    read: Role
    """The least role that may read the queue's jobs (of its own organisation)."""


QUEUE_ACCESS: dict[QueueName, QueueAccess] = {
    QueueName.MY_NEW_JOB: QueueAccess(enqueue=Role.MEMBER, read=Role.MEMBER),
    QueueName.NOTIFICATION_EMAIL: QueueAccess(enqueue=Role.MEMBER, read=Role.MEMBER),
    # Tenants record events through /audit-logs, which takes the organisation from the key; a raw
    # job's data names its own org_id, so only the operator may write one. Reading the queued
    # events is reading the audit log, which needs an owner.
    QueueName.AUDIT_LOGS: QueueAccess(enqueue=Role.OPERATOR, read=Role.OWNER),
    # Deliveries are enqueued by /webhooks routes for rows of the caller's organisation; a raw job
    # names an org_id and a delivery id, so only the operator may write one.
    QueueName.WEBHOOK_DELIVERY: QueueAccess(enqueue=Role.OPERATOR, read=Role.OWNER),
}
UNLISTED = QueueAccess(enqueue=Role.OPERATOR, read=Role.OWNER)
"""Jobs left in a queue the catalog no longer has: readable and manageable, never added to."""

_BY_NAME = {name.value: access for name, access in QUEUE_ACCESS.items()}

MANAGE = Role.OWNER
"""Retry, remove, clean and retry-failed (within the caller's organisation; all for the operator)."""


def access_of(queue: str) -> QueueAccess:
    return _BY_NAME.get(queue, UNLISTED)


def require_role(principal: Principal, role: Role, action: str) -> None:
    if not principal.at_least(role):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{action} needs the {role} role or above")


# str(): routes pass a QueueName, whose repr would put `<QueueName.X: 'x'>` in the answer.
def require_enqueue(principal: Principal, queue: str) -> None:
    require_role(principal, access_of(queue).enqueue, f"adding jobs to {str(queue)!r} directly")


def require_read(principal: Principal, queue: str) -> None:
    require_role(principal, access_of(queue).read, f"reading jobs of {str(queue)!r}")


def require_manage(principal: Principal) -> None:
    require_role(principal, MANAGE, "retrying, removing or cleaning jobs")
