"""The notification email handler against a real SMTP server: first called directly with a real
`Job`, then through the real queue and a burst worker for retries and permanent failures."""

import re
from collections.abc import AsyncIterator

import pytest
from forgestack_queue.errors import UnrecoverableError
from forgestack_queue.options import Backoff, JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_job, run_burst_worker
from forgestack_shared.catalog import NOTIFICATION_EMAIL
from forgestack_shared.jobs.notification_email import NotificationEmailData
from forgestack_shared.queues import QueueName
from forgestack_shared.settings import Settings, get_settings
from forgestack_worker.handlers.notification_email import handle_notification_email
from forgestack_worker.registry import HANDLERS
from forgestack_worker.resources import (
    RESOURCES_KEY,
    WorkerResources,
    close_resources,
    open_resources,
)
from forgestack_worker.services.email_sender import TransientDeliveryError
from forgestack_worker.settings import on_shutdown, on_startup
from redis.asyncio import Redis

from tests.worker.services.smtp_server import ScriptedSmtpServer

WELCOME = {"name": "Jane", "action_url": "https://app.example.com/start"}


@pytest.fixture
async def smtp_server() -> AsyncIterator[ScriptedSmtpServer]:
    async with ScriptedSmtpServer() as server:
        yield server


@pytest.fixture
def smtp_settings(
    settings: Settings, smtp_server: ScriptedSmtpServer, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The test's settings pointed at the test's SMTP server, as the worker process reads them."""
    monkeypatch.setenv("SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("MAIL_FROM", "Acme Alerts <alerts@acme.example.com>")
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
async def worker_resources(smtp_settings: Settings) -> AsyncIterator[WorkerResources]:
    res = await open_resources(smtp_settings)
    yield res
    await close_resources(res)


def email_data(**overrides: object) -> NotificationEmailData:
    fields: dict[str, object] = {
        "to": "Jane Doe <jane@example.com>",
        "subject": "Welcome aboard",
        "template": "welcome",
        "variables": WELCOME,
    }
    fields.update(overrides)
    return NotificationEmailData.model_validate(fields)


async def test_delivers_a_multipart_message_with_the_jobs_headers(
    smtp_server: ScriptedSmtpServer, worker_resources: WorkerResources
) -> None:
    data = email_data(
        reply_to="Support <support@acme.example.com>",
        variables={**WELCOME, "name": "<script>alert(1)</script>"},
    )
    job = make_job(data, queue=QueueName.NOTIFICATION_EMAIL, ctx={RESOURCES_KEY: worker_resources})

    result = await handle_notification_email(job)

    assert result.message_id == data.message_id
    assert result.accepted == ["jane@example.com"]
    assert result.smtp_response == "2.0.0 OK queued as m1"
    (caught,) = smtp_server.messages
    assert caught.mail_from == "alerts@acme.example.com"
    assert caught.rcpt_tos == ["jane@example.com"]
    message = caught.message
    assert message["From"] == "Acme Alerts <alerts@acme.example.com>"
    assert message["To"] == "Jane Doe <jane@example.com>"
    assert message["Subject"] == "Welcome aboard"
    assert message["Message-ID"] == data.message_id
    assert message["Reply-To"] == "Support <support@acme.example.com>"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert "Welcome, <script>alert(1)</script>!" in text.get_content()
    assert "Welcome, &lt;script&gt;alert(1)&lt;/script&gt;!" in html.get_content()
    assert "<script>" not in html.get_content()


async def test_a_missing_variable_is_unrecoverable_and_names_it(
    smtp_server: ScriptedSmtpServer, worker_resources: WorkerResources
) -> None:
    job = make_job(email_data(variables={"name": "Jane"}), ctx={RESOURCES_KEY: worker_resources})
    with pytest.raises(UnrecoverableError, match="'action_url' is undefined"):
        await handle_notification_email(job)
    assert smtp_server.rcpt_commands == 0


async def test_a_5xx_answer_is_unrecoverable_and_quotes_the_server(
    smtp_server: ScriptedSmtpServer, worker_resources: WorkerResources
) -> None:
    smtp_server.data_replies.append("554 5.7.1 Message rejected as spam")
    job = make_job(email_data(), ctx={RESOURCES_KEY: worker_resources})
    with pytest.raises(
        UnrecoverableError, match=re.escape("SMTP 554 5.7.1 Message rejected as spam")
    ):
        await handle_notification_email(job)


async def test_a_4xx_answer_is_left_to_the_queues_retries(
    smtp_server: ScriptedSmtpServer, worker_resources: WorkerResources
) -> None:
    smtp_server.data_replies.append("451 4.7.1 Greylisted, come back later")
    job = make_job(email_data(), ctx={RESOURCES_KEY: worker_resources})
    with pytest.raises(TransientDeliveryError, match=re.escape("451 4.7.1 Greylisted")):
        await handle_notification_email(job)


def fast_retries() -> JobOptions:
    """The catalog's defaults (5 attempts, failed jobs kept) with a backoff short enough for a test."""
    return JobOptions(backoff=Backoff(type="fixed", delay=100)).merged_over(
        NOTIFICATION_EMAIL.defaults
    )


async def run_worker(redis_url: str, queue_prefix: str) -> None:
    """The production handler list and the worker's own startup and shutdown hooks."""
    await run_burst_worker(
        redis_url, HANDLERS, prefix=queue_prefix, on_startup=on_startup, on_shutdown=on_shutdown
    )


async def test_451_then_250_delivers_once_after_one_retry(
    smtp_server: ScriptedSmtpServer,
    smtp_settings: Settings,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
) -> None:
    smtp_server.data_replies.append("451 4.3.0 Temporary local problem")
    queue = Queue(redis, QueueName.NOTIFICATION_EMAIL, prefix=queue_prefix)
    data = email_data()
    added = await queue.add(data.model_dump(mode="json"), fast_retries())

    await run_worker(redis_url, queue_prefix)

    job = await queue.get_job(added.id)
    assert job is not None
    assert job.state is JobState.COMPLETED
    assert job.attempts_made == 2
    assert job.result["message_id"] == data.message_id
    assert smtp_server.data_commands == 2
    (caught,) = smtp_server.messages
    assert caught.message["Message-ID"] == data.message_id


async def test_550_fails_the_job_at_once_with_the_servers_answer(
    smtp_server: ScriptedSmtpServer,
    smtp_settings: Settings,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
) -> None:
    smtp_server.rcpt_replies.append("550 5.1.1 <jane@example.com>: Recipient address rejected")
    queue = Queue(redis, QueueName.NOTIFICATION_EMAIL, prefix=queue_prefix)
    added = await queue.add(email_data().model_dump(mode="json"), fast_retries())

    await run_worker(redis_url, queue_prefix)

    job = await queue.get_job(added.id)
    assert job is not None
    assert job.state is JobState.FAILED
    assert job.attempts_made == 1
    assert job.failed_reason == (
        "UnrecoverableError: SMTP refused every recipient: jane@example.com: "
        "550 5.1.1 <jane@example.com>: Recipient address rejected"
    )
    assert smtp_server.rcpt_commands == 1
    assert smtp_server.messages == []


async def test_a_missing_variable_fails_the_queued_job_without_retry(
    smtp_server: ScriptedSmtpServer,
    smtp_settings: Settings,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
) -> None:
    queue = Queue(redis, QueueName.NOTIFICATION_EMAIL, prefix=queue_prefix)
    data = email_data(template="invitation", variables={"inviter_name": "Omar"})
    added = await queue.add(data.model_dump(mode="json"), fast_retries())

    await run_worker(redis_url, queue_prefix)

    job = await queue.get_job(added.id)
    assert job is not None
    assert job.state is JobState.FAILED
    assert job.attempts_made == 1
    assert job.failed_reason is not None
    assert "'organization_name' is undefined" in job.failed_reason
    assert smtp_server.rcpt_commands == 0
