"""EmailSender against a real SMTP server: delivery, pooling, TLS, AUTH, and how failures are sorted."""

import asyncio
import ssl
from email.headerregistry import Address
from email.message import EmailMessage

import aiosmtplib
import pytest
from forgestack_worker.services.email_sender import (
    EmailSender,
    PermanentDeliveryError,
    SmtpConfig,
    TransientDeliveryError,
    classify,
)
from pydantic import SecretStr

from tests.conftest import free_port
from tests.worker.services.smtp_server import ScriptedSmtpServer

SENDER = Address("ForgeStack", "no-reply", "forgestack.invalid")


def config_for(server: ScriptedSmtpServer, **overrides: object) -> SmtpConfig:
    fields: dict[str, object] = {"host": server.host, "port": server.port, "sender": SENDER}
    fields.update(overrides)
    return SmtpConfig(**fields)  # type: ignore[arg-type]


def simple_message(n: int = 1) -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = "jane@example.com"
    message["Subject"] = f"message {n}"
    message.set_content(f"body {n}")
    return message


async def test_delivers_the_message_and_returns_the_servers_answer(
    smtp_server: ScriptedSmtpServer,
) -> None:
    sender = EmailSender(config_for(smtp_server))
    receipt = await sender.send(simple_message(), recipients=["jane@example.com"])
    await sender.close()

    assert receipt.accepted == ["jane@example.com"]
    assert receipt.response == "2.0.0 OK queued as m1"
    (caught,) = smtp_server.messages
    assert caught.mail_from == "no-reply@forgestack.invalid"
    assert caught.rcpt_tos == ["jane@example.com"]
    assert caught.message["Subject"] == "message 1"


async def test_reuses_one_connection_for_consecutive_messages(
    smtp_server: ScriptedSmtpServer,
) -> None:
    sender = EmailSender(config_for(smtp_server))
    for n in range(3):
        await sender.send(simple_message(n), recipients=["jane@example.com"])
    await sender.close()
    assert len(smtp_server.messages) == 3
    assert smtp_server.connections == 1


async def test_replaces_a_pooled_connection_the_server_dropped(
    smtp_server: ScriptedSmtpServer,
) -> None:
    sender = EmailSender(config_for(smtp_server))
    await sender.send(simple_message(1), recipients=["jane@example.com"])
    for protocol in smtp_server._protocols:
        assert protocol.transport is not None
        protocol.transport.close()
    await asyncio.sleep(0.05)
    await sender.send(simple_message(2), recipients=["jane@example.com"])
    await sender.close()
    assert [m.message["Subject"] for m in smtp_server.messages] == ["message 1", "message 2"]
    assert smtp_server.connections == 2


async def test_opens_no_more_connections_than_configured(
    smtp_server: ScriptedSmtpServer,
) -> None:
    sender = EmailSender(config_for(smtp_server, max_connections=2))
    await asyncio.gather(
        *(sender.send(simple_message(n), recipients=["jane@example.com"]) for n in range(6))
    )
    await sender.close()
    assert len(smtp_server.messages) == 6
    assert smtp_server.connections <= 2


async def test_451_at_data_is_transient_and_the_next_send_works(
    smtp_server: ScriptedSmtpServer,
) -> None:
    smtp_server.data_replies.append("451 4.3.0 Try again later")
    sender = EmailSender(config_for(smtp_server))
    with pytest.raises(TransientDeliveryError) as info:
        await sender.send(simple_message(), recipients=["jane@example.com"])
    assert str(info.value) == "SMTP 451 4.3.0 Try again later"
    assert info.value.code == 451
    await sender.send(simple_message(), recipients=["jane@example.com"])
    await sender.close()
    assert len(smtp_server.messages) == 1


async def test_550_for_the_recipient_is_permanent_and_quotes_the_server(
    smtp_server: ScriptedSmtpServer,
) -> None:
    smtp_server.rcpt_replies.append("550 5.1.1 No such user here")
    sender = EmailSender(config_for(smtp_server))
    with pytest.raises(PermanentDeliveryError) as info:
        await sender.send(simple_message(), recipients=["jane@example.com"])
    await sender.close()
    assert info.value.code == 550
    assert str(info.value) == (
        "SMTP refused every recipient: jane@example.com: 550 5.1.1 No such user here"
    )
    assert smtp_server.messages == []


async def test_452_for_the_recipient_is_transient(smtp_server: ScriptedSmtpServer) -> None:
    smtp_server.rcpt_replies.append("452 4.2.2 Mailbox full")
    sender = EmailSender(config_for(smtp_server))
    with pytest.raises(TransientDeliveryError) as info:
        await sender.send(simple_message(), recipients=["jane@example.com"])
    await sender.close()
    assert (
        str(info.value) == "SMTP refused every recipient: jane@example.com: 452 4.2.2 Mailbox full"
    )


async def test_a_refused_connection_is_transient() -> None:
    config = SmtpConfig(host="127.0.0.1", port=free_port(), sender=SENDER, timeout_s=2)
    sender = EmailSender(config)
    with pytest.raises(TransientDeliveryError, match="SMTP connection failed"):
        await sender.send(simple_message(), recipients=["jane@example.com"])


async def test_no_configured_host_is_permanent() -> None:
    sender = EmailSender(SmtpConfig(host=None, port=25, sender=SENDER))
    with pytest.raises(PermanentDeliveryError, match="set SMTP_HOST"):
        await sender.send(simple_message(), recipients=["jane@example.com"])


async def test_logs_in_with_the_configured_credentials_over_starttls(
    server_tls: ssl.SSLContext,
) -> None:
    async with ScriptedSmtpServer(
        credentials=("mailer", "s3cret"), tls_context=server_tls
    ) as server:
        password = SecretStr("s3cret")
        sender = EmailSender(
            config_for(server, username="mailer", password=password, starttls=True)
        )
        await sender.send(simple_message(), recipients=["jane@example.com"])
        await sender.close()
        assert server.logins == ["mailer"]
        assert len(server.messages) == 1


async def test_a_rejected_password_is_permanent_and_not_echoed(server_tls: ssl.SSLContext) -> None:
    async with ScriptedSmtpServer(
        credentials=("mailer", "s3cret"), tls_context=server_tls
    ) as server:
        password = SecretStr("wrong")
        sender = EmailSender(
            config_for(server, username="mailer", password=password, starttls=True)
        )
        with pytest.raises(PermanentDeliveryError, match="SMTP 535") as info:
            await sender.send(simple_message(), recipients=["jane@example.com"])
        assert "wrong" not in str(info.value)
        assert server.messages == []


async def test_starttls_upgrades_the_connection(server_tls: ssl.SSLContext) -> None:
    async with ScriptedSmtpServer(tls_context=server_tls) as server:
        sender = EmailSender(config_for(server, starttls=True))
        await sender.send(simple_message(), recipients=["jane@example.com"])
        await sender.close()
        assert len(server.messages) == 1


async def test_implicit_tls_connects_over_tls(server_tls: ssl.SSLContext) -> None:
    async with ScriptedSmtpServer(tls_context=server_tls, implicit_tls=True) as server:
        sender = EmailSender(config_for(server, tls=True))
        await sender.send(simple_message(), recipients=["jane@example.com"])
        await sender.close()
        assert len(server.messages) == 1


async def test_required_starttls_on_a_server_without_it_is_permanent(
    smtp_server: ScriptedSmtpServer,
) -> None:
    sender = EmailSender(config_for(smtp_server, starttls=True))
    with pytest.raises(PermanentDeliveryError, match="STARTTLS"):
        await sender.send(simple_message(), recipients=["jane@example.com"])


def test_implicit_tls_and_starttls_together_are_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        EmailSender(SmtpConfig(host="127.0.0.1", port=25, sender=SENDER, tls=True, starttls=True))


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (aiosmtplib.SMTPResponseException(421, "closing"), TransientDeliveryError, 421),
        (aiosmtplib.SMTPDataError(554, "spam"), PermanentDeliveryError, 554),
        (aiosmtplib.SMTPSenderRefused(553, "no", "a@b.c"), PermanentDeliveryError, 553),
        (aiosmtplib.SMTPConnectResponseError(554, "go away"), PermanentDeliveryError, 554),
        (aiosmtplib.SMTPServerDisconnected("lost"), TransientDeliveryError, None),
        (aiosmtplib.SMTPReadTimeoutError("slow"), TransientDeliveryError, None),
        (ConnectionResetError("reset"), TransientDeliveryError, None),
        (aiosmtplib.SMTPNotSupported("no SMTPUTF8"), PermanentDeliveryError, None),
    ],
)
def test_classify_sorts_errors_by_what_a_retry_can_change(
    exc: Exception, kind: type[Exception], code: int | None
) -> None:
    sorted_error = classify(exc)
    assert type(sorted_error) is kind
    assert sorted_error.code == code


def unicode_message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = Address("Jörg", "jörg", "xn--bcher-kva.example")
    message["Subject"] = "Grüße"
    message.set_content("Hallo")
    return message


async def test_a_non_ascii_mailbox_goes_out_with_smtputf8(smtp_server: ScriptedSmtpServer) -> None:
    sender = EmailSender(config_for(smtp_server))
    await sender.send(unicode_message(), recipients=["jörg@xn--bcher-kva.example"])
    await sender.close()
    (caught,) = smtp_server.messages
    assert caught.rcpt_tos == ["jörg@xn--bcher-kva.example"]
    assert caught.message["To"] == "Jörg <jörg@xn--bcher-kva.example>"


async def test_a_non_ascii_mailbox_on_a_server_without_smtputf8_is_permanent() -> None:
    async with ScriptedSmtpServer(smtputf8=False) as server:
        sender = EmailSender(config_for(server))
        with pytest.raises(PermanentDeliveryError, match="SMTPUTF8"):
            await sender.send(unicode_message(), recipients=["jörg@xn--bcher-kva.example"])
        assert server.messages == []
