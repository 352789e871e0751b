"""Renders a notification email from its template and delivers it over SMTP.

What retries and what does not: a template that cannot render and an SMTP 5xx answer fail the job
at once (`UnrecoverableError`, the reason names the variable or quotes the server); SMTP 4xx answers
and connection trouble raise `TransientDeliveryError`, which the queue retries with its backoff.
"""

from datetime import UTC, datetime

from forgestack_queue.errors import UnrecoverableError
from forgestack_queue.job import Job
from forgestack_shared.jobs.notification_email import (
    NotificationEmailData,
    NotificationEmailResult,
    parse_mailbox,
)

from ..resources import resources


async def handle_notification_email(job: Job[NotificationEmailData]) -> NotificationEmailResult:
    # Loaded with the worker's resources, on a thread beside its first claims (the renderer, the
    # message builder and the email package's header parser), not with this module.
    from ..services.email_errors import PermanentDeliveryError
    from ..services.email_message import build_message
    from ..services.email_rendering import TemplateRenderError, default_renderer

    data = job.data
    sender = resources(job).email_sender
    log = job.logger.bind(message_id=data.message_id, template=data.template)
    try:
        body = default_renderer().render(
            data.template, subject=data.subject, variables=data.variables
        )
        to = parse_mailbox(data.to)
        message = build_message(
            sender=sender.config.sender,
            to=to,
            subject=data.subject,
            message_id=data.message_id,
            body=body,
            reply_to=parse_mailbox(data.reply_to) if data.reply_to else None,
        )
    except (TemplateRenderError, ValueError) as exc:
        # ValueError: an address or header the email package refuses (UnsafeHeaderError too).
        # The payload was validated before it was queued, so this is a contract drift: no retry.
        raise UnrecoverableError(str(exc)) from exc
    try:
        receipt = await sender.send(message, recipients=[to.addr_spec])
    except PermanentDeliveryError as exc:
        log.warning("SMTP refused the message for good: {}", exc)
        raise UnrecoverableError(str(exc)) from exc
    log.info("email delivered; server answered {!r}", receipt.response)
    return NotificationEmailResult(
        message_id=data.message_id,
        accepted=receipt.accepted,
        smtp_response=receipt.response,
        sent_at=datetime.now(UTC),
    )
