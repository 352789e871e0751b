"""A real SMTP server (aiosmtpd) on a free loopback port, served by the test's own event loop,
whose answers to RCPT and DATA can be scripted (451 now, 250 later; 550 for good)."""

import asyncio
import ssl
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Self

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class CaughtMessage:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class ScriptedSmtpServer:
    """Each entry of `rcpt_replies` / `data_replies` answers one RCPT / DATA, then `250` again."""

    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        credentials: tuple[str, str] | None = None,
        smtputf8: bool = True,
    ) -> None:
        self.rcpt_replies: list[str] = []
        self.data_replies: list[str] = []
        self.messages: list[CaughtMessage] = []
        self.rcpt_commands = 0
        self.data_commands = 0
        self._protocols: list[SMTP] = []
        self.logins: list[str] = []
        self._tls_context = tls_context
        self._implicit_tls = implicit_tls
        self._credentials = credentials
        self._smtputf8 = smtputf8
        self._server: asyncio.Server | None = None
        self.host = "127.0.0.1"
        self.port = 0

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol,
            self.host,
            0,
            ssl=self._tls_context if self._implicit_tls else None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for protocol in self._protocols:
            if protocol.transport is not None:
                protocol.transport.close()
        await self._server.wait_closed()

    def _protocol(self) -> SMTP:
        protocol = SMTP(
            self,
            hostname="smtp.test",
            enable_SMTPUTF8=self._smtputf8,
            tls_context=None if self._implicit_tls else self._tls_context,
            require_starttls=self._tls_context is not None and not self._implicit_tls,
            auth_required=self._credentials is not None,
            authenticator=self._authenticate if self._credentials else None,
            loop=asyncio.get_running_loop(),
        )
        self._protocols.append(protocol)
        return protocol

    @property
    def connections(self) -> int:
        return len(self._protocols)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append(data.login.decode())
        expected = self._credentials
        ok = expected is not None and (data.login.decode(), data.password.decode()) == expected
        return AuthResult(success=ok, handled=False)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.rcpt_commands += 1
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_commands += 1
        if self.data_replies:
            return self.data_replies.pop(0)
        assert isinstance(envelope.content, bytes)
        assert envelope.mail_from is not None
        self.messages.append(
            CaughtMessage(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        )
        return f"250 2.0.0 OK queued as m{len(self.messages)}"
