"""SMTP delivery with aiosmtplib: a small pool of open connections shared by concurrent jobs, and
errors sorted into the two kinds the queue acts on.

- `TransientDeliveryError`: 4xx answers, refused or dropped connections, timeouts. Raised as is, so
  the queue retries with the job's backoff.
- `PermanentDeliveryError`: 5xx answers and configuration the server cannot work with. Carries the
  server's code and answer; the handler turns it into `UnrecoverableError`.

A send whose outcome is uncertain (the connection drops after the message body went out) counts as
transient: the retry re-sends with the same Message-ID, which lets a receiver recognise the duplicate.
"""

import asyncio
import time
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Self

import aiosmtplib
from forgestack_shared.jobs.notification_email import parse_mailbox
from forgestack_shared.settings import Settings
from loguru import logger
from pydantic import SecretStr

from .email_errors import EmailDeliveryError, PermanentDeliveryError, TransientDeliveryError

__all__ = [
    "DeliveryReceipt",
    "EmailDeliveryError",
    "EmailSender",
    "PermanentDeliveryError",
    "SmtpConfig",
    "TransientDeliveryError",
]


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str | None
    port: int
    sender: Address
    """From header and envelope sender of every message."""
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    tls: bool = False
    timeout_s: float = 10.0
    max_connections: int = 4
    max_idle_s: float = 30.0
    """Idle connections older than this are closed, not reused: servers drop them after a while."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Raises ValueError when MAIL_FROM is not one valid address: better at startup than per job."""
        try:
            sender = parse_mailbox(settings.mail_from, deliverable=False)
        except ValueError as exc:
            raise ValueError(f"MAIL_FROM is not a valid address: {exc}") from exc
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=sender,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            tls=settings.smtp_tls,
            timeout_s=settings.smtp_timeout_s,
            max_connections=settings.smtp_max_connections,
        )


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    accepted: list[str]
    response: str


def classify(exc: Exception) -> EmailDeliveryError:
    """Maps what aiosmtplib (or the network) raised onto transient or permanent."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        answers = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        codes = [r.code for r in exc.recipients]
        transient = any(400 <= code < 500 for code in codes)
        kind = TransientDeliveryError if transient else PermanentDeliveryError
        return kind(f"SMTP refused every recipient: {answers}", codes[0] if codes else None)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        answer = f"SMTP {exc.code} {exc.message}"
        if isinstance(exc, aiosmtplib.SMTPSenderRefused):
            answer += f" (sender {exc.sender})"
        if 500 <= exc.code < 600:
            return PermanentDeliveryError(answer, exc.code)
        return TransientDeliveryError(answer, exc.code)
    if isinstance(exc, OSError | TimeoutError):
        # Refused, reset or dropped connections and timeouts (aiosmtplib's included).
        return TransientDeliveryError(f"SMTP connection failed: {type(exc).__name__}: {exc}")
    # What is left is a mismatch between our settings and the server (no STARTTLS, no usable
    # AUTH mechanism, no SMTPUTF8): it stays until someone changes the configuration.
    return PermanentDeliveryError(f"SMTP session cannot proceed: {exc}")


_NETWORK_ERRORS = (aiosmtplib.SMTPException, OSError, TimeoutError)


class EmailSender:
    """Opens connections lazily (the worker starts even when SMTP is down) and reuses idle ones."""

    def __init__(self, config: SmtpConfig) -> None:
        if config.tls and config.starttls:
            raise ValueError("SMTP_TLS (implicit TLS) and SMTP_STARTTLS are mutually exclusive")
        if config.host is None:
            logger.warning("SMTP_HOST is unset: notification emails fail until it is configured")
        self.config = config
        self._slots = asyncio.Semaphore(config.max_connections)
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self._closed = False

    async def send(self, message: EmailMessage, *, recipients: list[str]) -> DeliveryReceipt:
        """One SMTP transaction; raises `TransientDeliveryError` or `PermanentDeliveryError`."""
        if self.config.host is None:
            raise PermanentDeliveryError(
                "no SMTP server configured: set SMTP_HOST (`forgestack dev` starts a mail catcher)"
            )
        async with self._slots:
            try:
                client = await self._checkout()
            except _NETWORK_ERRORS as exc:
                raise classify(exc) from exc
            delivered = False
            try:
                refused, response = await client.send_message(
                    message, sender=self.config.sender.addr_spec, recipients=recipients
                )
                delivered = True
            except _NETWORK_ERRORS as exc:
                raise classify(exc) from exc
            except ValueError as exc:
                raise PermanentDeliveryError(f"message cannot be sent: {exc}") from exc
            finally:
                # After a refusal, a timeout or a cancelled job the session state is unknown:
                # only a clean transaction returns its connection to the pool.
                if delivered:
                    self._checkin(client)
                else:
                    client.close()
        accepted = [r for r in recipients if r not in refused]
        return DeliveryReceipt(accepted=accepted, response=response)

    async def close(self) -> None:
        """Says goodbye on every idle connection; later sends still work but are not pooled."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._quit(client) for client, _ in idle))

    async def _checkout(self) -> aiosmtplib.SMTP:
        """An idle connection that still answers NOOP, else a new one."""
        while self._idle:
            client, since = self._idle.pop()
            if time.monotonic() - since > self.config.max_idle_s:
                await self._quit(client)
                continue
            try:
                await client.noop(timeout=self.config.timeout_s)
            except _NETWORK_ERRORS:
                client.close()
                continue
            return client
        return await self._connect()

    def _checkin(self, client: aiosmtplib.SMTP) -> None:
        if self._closed or not client.is_connected:
            client.close()
            return
        self._idle.append((client, time.monotonic()))

    async def _connect(self) -> aiosmtplib.SMTP:
        cfg = self.config
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            use_tls=cfg.tls,
            start_tls=cfg.starttls,
            username=cfg.username,
            password=cfg.password.get_secret_value() if cfg.password else None,
            timeout=cfg.timeout_s,
        )
        await client.connect()
        logger.debug("SMTP connection opened to {}:{}", cfg.host, cfg.port)
        return client

    async def _quit(self, client: aiosmtplib.SMTP) -> None:
        try:
            await client.quit(timeout=self.config.timeout_s)
        except _NETWORK_ERRORS:
            pass
        finally:
            client.close()
