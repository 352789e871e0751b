"""Long-lived clients the handlers share: opened once in the worker's on_startup, closed on shutdown,
reached by a handler through `resources(job)`.

The database layer (SQLAlchemy, SQLModel, the models) and the HTTP client are most of what a worker
would import at start, and no job needs them before its handler runs: they are imported here, on
a thread while the event loop claims its first jobs (see `forgestack_worker.opening`), not when
the worker module loads."""

import asyncio
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from forgestack_queue.job import Job
from forgestack_shared.catalog import CATALOG
from forgestack_shared.settings import Settings
from forgestack_shared.ssrf import Resolver, system_resolver

if TYPE_CHECKING:
    from forgestack_db.database import Database

    from .services.email_sender import EmailSender
    from .services.webhook_client import WebhookClient

RESOURCES_KEY = "forgestack_resources"
CLIENT_MODULES = (
    "forgestack_db.startup",
    "forgestack_db.audit",
    "forgestack_db.webhooks",
    "forgestack_db.api_keys",
    "forgestack_worker.services.email_sender",
    "forgestack_worker.services.email_rendering",
    "forgestack_worker.services.email_message",
    "jinja2",
    "email_validator",
    "forgestack_worker.services.webhook_client",
    "forgestack_worker.services.webhook_request",
    "forgestack_queue.retention",
    "forgestack_queue.queue_stats",
)
"""What the handlers import on first use: loaded before the first handler runs, so none of them
pays an import inside the event loop."""


@dataclass(slots=True)
class WorkerResources:
    settings: Settings
    email_sender: "EmailSender"
    db: "Database"
    webhook_client: "WebhookClient"
    resolver: Resolver = field(default=system_resolver)
    """How webhook hosts resolve; tests substitute one to play DNS rebinding."""


def import_clients() -> None:
    """Blocking (imports run Python for a few hundred milliseconds): call it on a thread."""
    for name in CLIENT_MODULES:
        importlib.import_module(name)
    build_catalog_models()


def build_catalog_models() -> None:
    """The catalog's payload and result models build their validators on first use (defer_build,
    so importing the worker does not): built here instead, so no first job of a queue pays it in
    the event loop. A model already built (by the API's validation in the same process, or an
    arq call validated meanwhile) is left as it is."""
    for spec in CATALOG.values():
        spec.data_model.model_rebuild()
        spec.result_model.model_rebuild()


async def open_resources(settings: Settings) -> WorkerResources:
    await asyncio.to_thread(import_clients)
    from forgestack_db.startup import open_database

    from .services.email_sender import EmailSender, SmtpConfig
    from .services.webhook_client import WebhookClient

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
