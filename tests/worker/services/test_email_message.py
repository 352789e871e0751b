"""The MIME message: headers, multipart/alternative, and no way to write a second header line."""

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.headerregistry import Address

import pytest
from forgestack_worker.services.email_message import UnsafeHeaderError, build_message
from forgestack_worker.services.email_rendering import RenderedEmail

SENDER = Address("ForgeStack", "no-reply", "forgestack.invalid")
BODY = RenderedEmail(html="<p>Hi</p>\n", text="Hi\n")


def test_headers_and_parts() -> None:
    message = build_message(
        sender=SENDER,
        to=Address("Doe, Jane", "jane", "example.com"),
        subject="Héllo",
        message_id="<abc@forgestack>",
        body=BODY,
        reply_to=Address("", "support", "example.com"),
        date=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["From"] == "ForgeStack <no-reply@forgestack.invalid>"
    assert parsed["To"] == '"Doe, Jane" <jane@example.com>'
    assert parsed["Reply-To"] == "support@example.com"
    assert parsed["Subject"] == "Héllo"
    assert parsed["Message-ID"] == "<abc@forgestack>"
    assert parsed["Date"] == "Wed, 02 Jan 2030 03:04:05 +0000"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [(p.get_content_type(), p.get_content()) for p in parsed.iter_parts()]
    assert parts == [("text/plain", "Hi\n"), ("text/html", "<p>Hi</p>\n")]


def test_no_reply_to_header_unless_asked() -> None:
    message = build_message(
        sender=SENDER, to=SENDER, subject="s", message_id="<a@forgestack>", body=BODY
    )
    assert "Reply-To" not in message


@pytest.mark.parametrize("subject", ["hi\r\nBcc: x@example.com", "hi\nBcc: x@example.com"])
def test_a_raw_line_break_in_a_header_is_refused_by_the_email_package(subject: str) -> None:
    with pytest.raises(ValueError, match="linefeed or carriage return"):
        build_message(
            sender=SENDER, to=SENDER, subject=subject, message_id="<a@forgestack>", body=BODY
        )


def test_an_encoded_word_that_decodes_to_a_line_break_is_refused() -> None:
    with pytest.raises(UnsafeHeaderError, match="Subject header"):
        build_message(
            sender=SENDER,
            to=SENDER,
            subject="=?utf-8?q?hi=0D=0ABcc:_x@example.com?=",
            message_id="<a@forgestack>",
            body=BODY,
        )
