"""Queue names shared by the API (producer) and the worker (consumer)."""

from enum import StrEnum


class QueueName(StrEnum):
    """Every queue ForgeStack knows; values are kebab-case and never contain ':' (Redis key separator)."""

    MY_NEW_JOB = "my-new-job"
    NOTIFICATION_EMAIL = "notification-email"
    AUDIT_LOGS = "audit-logs"
    WEBHOOK_DELIVERY = "webhook-delivery"
