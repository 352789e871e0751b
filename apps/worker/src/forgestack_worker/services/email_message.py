"""Builds the MIME message: multipart/alternative (plain text first, HTML preferred) with safe headers.

Addresses are set as `Address` objects, never concatenated strings, so the email package quotes and
encodes display names itself; every header is re-checked after it is set (see `_set_header`).
"""

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING

from forgestack_shared.jobs.notification_email import has_control_chars

from .email_rendering import RenderedEmail

if TYPE_CHECKING:
    # Only annotations here: the addresses come from forgestack_shared's parse_mailbox, which
    # imports the header parser on first use rather than with the worker (a few ms of its start).
    from email.headerregistry import Address


class UnsafeHeaderError(ValueError):
    """A header value would span lines; validation upstream should make this unreachable."""


def _set_header(message: EmailMessage, name: str, value: "str | Address") -> None:
    message[name] = value
    # The email package decodes RFC 2047 words on assignment: what it stores is what it writes.
    if has_control_chars(str(message[name])):
        del message[name]
        raise UnsafeHeaderError(f"{name} header would contain control characters")


def build_message(
    *,
    sender: "Address",
    to: "Address",
    subject: str,
    message_id: str,
    body: RenderedEmail,
    reply_to: "Address | None" = None,
    date: datetime | None = None,
) -> EmailMessage:
    message = EmailMessage()
    _set_header(message, "From", sender)
    _set_header(message, "To", to)
    if reply_to is not None:
        _set_header(message, "Reply-To", reply_to)
    _set_header(message, "Subject", subject)
    _set_header(message, "Date", format_datetime(date or datetime.now(UTC)))
    _set_header(message, "Message-ID", message_id)
    # RFC 3834: tells auto-responders (vacation replies) not to answer a machine.
    _set_header(message, "Auto-Submitted", "auto-generated")
    message.set_content(body.text)
    message.add_alternative(body.html, subtype="html")
    return message
