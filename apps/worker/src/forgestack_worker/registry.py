"""The one registration list: every job handler the worker serves, bound to its catalog entry."""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from forgestack_queue.job import Job
from forgestack_queue.runner import Handler
from forgestack_shared.catalog import QueueSpec
from pydantic import BaseModel

from .handlers.audit_log import handle_audit_log
from .handlers.my_new_job import handle_my_new_job
from .handlers.notification_email import handle_notification_email
from .handlers.webhook_delivery import handle_webhook_delivery

DataT = TypeVar("DataT", bound=BaseModel)
ResultT = TypeVar("ResultT", bound=BaseModel)


def register(
    spec: QueueSpec[DataT, ResultT], fn: Callable[[Job[DataT]], Awaitable[ResultT]]
) -> Handler[DataT, ResultT]:
    """Typed so mypy rejects a handler whose payload or result does not match its queue."""
    return Handler(queue=spec.name.value, fn=fn, data_model=spec.data_model)


def _handlers() -> list[Handler[Any, Any]]:
    from forgestack_shared.catalog import (
        AUDIT_LOGS,
        MY_NEW_JOB,
        NOTIFICATION_EMAIL,
        WEBHOOK_DELIVERY,
    )

    return [
        register(MY_NEW_JOB, handle_my_new_job),
        register(NOTIFICATION_EMAIL, handle_notification_email),
        register(AUDIT_LOGS, handle_audit_log),
        register(WEBHOOK_DELIVERY, handle_webhook_delivery),
    ]


HANDLERS: list[Handler[Any, Any]] = _handlers()
