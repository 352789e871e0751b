"""Long-lived clients the handlers share: opened once in the worker's on_startup, closed on shutdown,
reached by a handler through `resources(job)`."""

from dataclasses import dataclass, field
from typing import Any

from forgestack_db.database import Database
from forgestack_db.startup import open_database
from forgestack_queue.job import Job
from forgestack_shared.settings import Settings
from forgestack_shared.ssrf import Resolver, system_resolver

from .services.email_sender import EmailSender, SmtpConfig
from .services.webhook_client import WebhookClient

RESOURCES_KEY = "forgestack_resources"


@dataclass(slots=True)
class WorkerResources:
    settings: Settings
    email_sender: EmailSender
    db: Database
    webhook_client: WebhookClient
    resolver: Resolver = field(default=system_resolver)
    """How webhook hosts resolve; tests substitute one to play DNS rebinding."""


async def open_resources(settings: Settings) -> WorkerResources:
    # Refuses to start (raises) when the login would read around row-level security.
    db = await open_database(settings.effective_database_url, settings)
    return WorkerResources(
        settings=settings,
        email_sender=EmailSender(SmtpConfig.from_settings(settings)),
        db=db,
        webhook_client=WebhookClient(settings.webhook_timeout_s),
    )


async def close_resources(res: WorkerResources) -> None:
    """Closes in reverse order of opening; each new client adds its close here."""
    await res.webhook_client.close()
    await res.email_sender.close()
    await res.db.dispose()


def resources(job: Job[Any]) -> WorkerResources:
    res = job.ctx.get(RESOURCES_KEY)
    if not isinstance(res, WorkerResources):
        raise RuntimeError("worker resources are not open: is on_startup wired?")
    return res
