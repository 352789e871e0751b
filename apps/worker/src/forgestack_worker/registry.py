"""The one registration list: every job function the worker serves, as arq `func(...)` entries
named by their queue. Payload and result models, and default options, come from the catalog
(`forgestack_shared.catalog`); see forgestack_queue.arq_functions for what `func(...)` maps to."""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from arq import func
from arq.typing import WorkerCoroutine
from arq.worker import Function
from forgestack_queue.arq_functions import handlers_from_functions
from forgestack_queue.job import Job
from forgestack_queue.runner import Handler
from forgestack_shared.catalog import (
    AUDIT_LOGS,
    CATALOG,
    MY_NEW_JOB,
    NOTIFICATION_EMAIL,
    WEBHOOK_DELIVERY,
    QueueSpec,
)
from forgestack_shared.queues import QueueName
from pydantic import BaseModel

from .handlers.audit_log import handle_audit_log
from .handlers.my_new_job import handle_my_new_job
from .handlers.notification_email import handle_notification_email
from .handlers.webhook_delivery import handle_webhook_delivery

DataT = TypeVar("DataT", bound=BaseModel)
ResultT = TypeVar("ResultT", bound=BaseModel)


def typed(
    spec: QueueSpec[DataT, ResultT], fn: Callable[[Job[DataT]], Awaitable[ResultT]]
) -> WorkerCoroutine:
    """For mypy only: rejects a handler whose payload or result does not match its queue."""
    return cast(WorkerCoroutine, fn)


FUNCTIONS: list[Function] = [
    func(typed(MY_NEW_JOB, handle_my_new_job), name=QueueName.MY_NEW_JOB.value),
    func(
        typed(NOTIFICATION_EMAIL, handle_notification_email),
        name=QueueName.NOTIFICATION_EMAIL.value,
    ),
    func(typed(AUDIT_LOGS, handle_audit_log), name=QueueName.AUDIT_LOGS.value),
    func(typed(WEBHOOK_DELIVERY, handle_webhook_delivery), name=QueueName.WEBHOOK_DELIVERY.value),
]

HANDLERS: list[Handler[Any, Any]] = handlers_from_functions(FUNCTIONS, CATALOG, default_max_tries=5)
"""The same functions as handlers, for tests that run a worker in-process."""
