"""Long-lived clients the handlers share: opened once in the worker's on_startup, closed on shutdown,
reached by a handler through `resources(job)`."""

from dataclasses import dataclass
from typing import Any

from forgestack_queue.job import Job
from forgestack_shared.settings import Settings

from .services.email_sender import EmailSender, SmtpConfig

RESOURCES_KEY = "forgestack_resources"


@dataclass(slots=True)
class WorkerResources:
    settings: Settings
    email_sender: EmailSender


async def open_resources(settings: Settings) -> WorkerResources:
    return WorkerResources(
        settings=settings,
        email_sender=EmailSender(SmtpConfig.from_settings(settings)),
    )


async def close_resources(res: WorkerResources) -> None:
    """Closes in reverse order of opening; each new client adds its close here."""
    await res.email_sender.close()


def resources(job: Job[Any]) -> WorkerResources:
    res = job.ctx.get(RESOURCES_KEY)
    if not isinstance(res, WorkerResources):
        raise RuntimeError("worker resources are not open: is on_startup wired?")
    return res
