"""The development mail catcher: an SMTP server on loopback that delivers nothing and keeps every
message it receives as an `.eml` file under `<FORGESTACK_DATA_DIR>/mail/`, readable by any mail
client or text editor.

`forgestack dev` runs it as a child process (`python -m forgestack_cli.mail_catcher`) when
SMTP_HOST is unset, and points the worker at it. `MailCatcher` is the same server for in-process
use: `start()` serves from a background thread, `stop()` ends it.
"""

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Self

from aiosmtpd.controller import Controller
from loguru import logger

if TYPE_CHECKING:
    from .stack import DevStack

HOST = "127.0.0.1"
FIRST_PORT = 1025
"""The port dev mail catchers traditionally use; the next free one when it is taken."""
LAST_PORT = 1044
START_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class _SaveToDirectory:
    """aiosmtpd handler: one file per message, written whole before it gets its final name."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        path = await asyncio.to_thread(
            self.save, envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
        )
        return f"250 2.0.0 OK caught as {path.name}"

    def save(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> Path:
        # What a real final delivery adds, so a reader sees the envelope as well as the headers.
        # Stored with Unix line ends, as Maildir does: SMTP's CRLF is a wire format.
        trace = f"Return-Path: <{mail_from}>\n" + "".join(
            f"Delivered-To: {rcpt}\n" for rcpt in rcpt_tos
        )
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        partial = path.with_suffix(".eml.part")
        partial.write_bytes(trace.encode() + content.replace(b"\r\n", b"\n"))
        os.replace(partial, path)
        subject = BytesParser(policy=default_policy).parsebytes(content, headersonly=True)[
            "subject"
        ]
        logger.info("caught mail to {} subject {!r}: {}", ", ".join(rcpt_tos), subject, path)
        return path


class MailCatcher:
    """An aiosmtpd server on loopback saving messages to `directory`; `port=0` picks a free one."""

    def __init__(self, directory: Path, *, host: str = HOST, port: int = 0) -> None:
        self.directory = directory
        self.host = host
        self.port = port or _free_port()
        self._controller: Controller | None = None

    def start(self) -> None:
        """Serves from a background thread; returns once the server answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        controller = Controller(
            _SaveToDirectory(self.directory),
            hostname=self.host,
            port=self.port,
            server_hostname="forgestack-mail-catcher",
            data_size_limit=25 * 1024 * 1024,
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def mail_dir(data_dir: Path) -> Path:
    return data_dir / "mail"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            return sock.recv(3) == b"220"
    except OSError:
        return False


def use_or_start_mail_catcher(stack: "DevStack") -> None:
    """`forgestack dev` step: the configured SMTP server, else a catcher child process."""
    from .embedded_redis import port_is_free
    from .processes import stop_all
    from .stack import DevError

    settings = stack.settings
    if settings.smtp_host:
        stack.report("SMTP", f"{settings.smtp_host}:{settings.smtp_port} (SMTP_HOST)")
        return
    directory = mail_dir(stack.data_dir)
    port = None
    for candidate in range(FIRST_PORT, LAST_PORT + 1):
        if not port_is_free(candidate, HOST):
            continue
        argv = [sys.executable, "-m", "forgestack_cli.mail_catcher", "--port", str(candidate)]
        proc = stack.spawn("mail-catcher", [*argv, "--dir", str(directory)], tier=0)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(candidate) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None and _answers(candidate):
            port = candidate
            break
        # Another process took the port between the check and our bind: try the next one.
        stack.processes.remove(proc)
        stop_all([proc])
    if port is None:
        raise DevError(f"the mail catcher could not start on {HOST}:{FIRST_PORT}-{LAST_PORT}")
    # The catcher speaks neither TLS nor AUTH: settings meant for a real server must not apply.
    stack.env.update(SMTP_HOST=HOST, SMTP_PORT=str(port), SMTP_STARTTLS="false", SMTP_TLS="false")
    stack.env.pop("SMTP_USERNAME", None)
    stack.env.pop("SMTP_PASSWORD", None)
    stack.report("Mail catcher", f"smtp://{HOST}:{port}, messages saved in {directory}")


def main(argv: list[str] | None = None) -> None:
    """Runs the catcher in the foreground until SIGINT or SIGTERM."""
    from forgestack_shared.logging import configure_logging
    from forgestack_shared.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m forgestack_cli.mail_catcher")
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, default=FIRST_PORT)
    parser.add_argument("--dir", type=Path, help="where .eml files go (default: <data dir>/mail)")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json, component="mail")
    # aiosmtpd narrates every connection (readiness probes included) at INFO.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    directory = args.dir or mail_dir(settings.forgestack_data_dir)

    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    with MailCatcher(directory, host=args.host, port=args.port):
        logger.info("mail catcher on {}:{}, saving to {}", args.host, args.port, directory)
        stop.wait()
    logger.info("mail catcher stopped")


if __name__ == "__main__":
    main()
