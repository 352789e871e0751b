"""The dev mail catcher: in process, as the child `forgestack dev` starts, and as a dev step."""

import asyncio
import signal
import socket
import subprocess
import sys
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from forgestack_cli.mail_catcher import MailCatcher, use_or_start_mail_catcher
from forgestack_cli.processes import stop_all
from forgestack_cli.stack import DevStack
from forgestack_shared.settings import Settings

from tests.conftest import free_port


def a_message(subject: str = "Hello") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "ForgeStack <no-reply@forgestack.invalid>"
    message["To"] = "Jane <jane@example.com>"
    message["Subject"] = subject
    message["Message-ID"] = "<abc@forgestack>"
    message.set_content("plain body")
    message.add_alternative("<p>html body</p>", subtype="html")
    return message


def saved(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.eml"))


async def send_to(port: int, message: EmailMessage) -> str:
    _, answer = await aiosmtplib.send(message, hostname="127.0.0.1", port=port, timeout=5)
    return answer


async def test_each_message_becomes_one_eml_file_with_its_envelope(tmp_path: Path) -> None:
    directory = tmp_path / "mail"
    with MailCatcher(directory) as catcher:
        answer = await send_to(catcher.port, a_message("first"))
        await send_to(catcher.port, a_message("second"))

    files = saved(directory)
    assert len(files) == 2
    assert answer == f"2.0.0 OK caught as {files[0].name}"
    assert list(directory.glob("*.part")) == []
    raw = files[0].read_bytes()
    assert raw.startswith(b"Return-Path: <no-reply@forgestack.invalid>\n")
    assert b"\r" not in raw
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Delivered-To"] == "jane@example.com"
    assert parsed["Subject"] == "first"
    assert parsed["Message-ID"] == "<abc@forgestack>"
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None
    assert html is not None
    assert text.get_content() == "plain body\n"
    assert html.get_content() == "<p>html body</p>\n"


def _greets(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            return sock.recv(3) == b"220"
    except OSError:
        return False


def _wait_for_greeting(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while not _greets(port):
        assert proc.poll() is None, "the catcher exited at start"
        assert time.monotonic() < deadline, "the catcher did not answer"
        time.sleep(0.05)


def test_the_child_process_catches_mail_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    directory = tmp_path / "mail"
    argv = [sys.executable, "-m", "forgestack_cli.mail_catcher", "--port", str(port)]
    proc = subprocess.Popen([*argv, "--dir", str(directory)])
    try:
        _wait_for_greeting(port, proc)
        asyncio.run(send_to(port, a_message()))
        assert len(saved(directory)) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()


def test_dev_step_starts_a_catcher_and_points_the_children_at_it(tmp_path: Path) -> None:
    stack = DevStack.create(Settings(forgestack_data_dir=tmp_path, smtp_host=None))
    stack.env.update(SMTP_STARTTLS="true", SMTP_USERNAME="someone", SMTP_PASSWORD="secret")
    try:
        use_or_start_mail_catcher(stack)
        (proc,) = stack.processes
        assert proc.name == "mail-catcher"
        assert proc.poll() is None
        assert stack.env["SMTP_HOST"] == "127.0.0.1"
        assert _greets(int(stack.env["SMTP_PORT"]))
        assert stack.env["SMTP_STARTTLS"] == "false"
        assert "SMTP_USERNAME" not in stack.env
        assert "SMTP_PASSWORD" not in stack.env
        ((label, value),) = stack.summary
        assert label == "Mail catcher"
        assert str(tmp_path.resolve() / "mail") in value
    finally:
        stop_all(stack.processes)
    assert proc.poll() is not None


def test_dev_step_uses_a_configured_smtp_server(tmp_path: Path) -> None:
    settings = Settings(forgestack_data_dir=tmp_path, smtp_host="smtp.example.com", smtp_port=587)
    stack = DevStack.create(settings)
    use_or_start_mail_catcher(stack)
    assert stack.processes == []
    assert stack.summary == [("SMTP", "smtp.example.com:587 (SMTP_HOST)")]


@pytest.fixture(autouse=True)
def _no_smtp_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SMTP_HOST", "SMTP_PORT", "SMTP_STARTTLS", "SMTP_USERNAME", "SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
