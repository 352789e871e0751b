"""`forgestack dev` without SMTP_HOST: an email requested over HTTP lands as a file in the data dir."""

import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest

from tests.cli.devrun import DevRun, descendants, dev_command, dev_env
from tests.conftest import free_port

KEY_LINE = r"Admin API key\s+(\S+)"


@pytest.fixture
def run(tmp_path: Path) -> Iterator[tuple[DevRun, int]]:
    port = free_port()
    dev = DevRun.start(dev_command(via_uv=False), dev_env(tmp_path / "data", port), cwd=tmp_path)
    pids: list[int] = []
    try:
        yield dev, port
    finally:
        pids.extend(descendants(dev.proc.pid))
        dev.kill_everything(pids)


def test_an_email_sent_through_the_api_is_caught_under_the_data_dir(
    run: tuple[DevRun, int], tmp_path: Path
) -> None:
    dev, port = run
    key = dev.wait_for(KEY_LINE).group(1)
    dev.wait_for(r"Press Ctrl-C to stop")
    assert dev.wait_for(r"Mail catcher\s+smtp://127\.0\.0\.1:\d+, messages saved in ")
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}
    ) as client:
        response = client.post(
            "/api/v1/notifications/email",
            json={
                "to": "Jane <jane@example.com>",
                "subject": "Hello from dev",
                "template": "notification",
                "variables": {"message": "It works."},
            },
        )
    assert response.status_code == 202, response.text
    mail_dir = tmp_path / "data" / "mail"
    deadline = time.monotonic() + 15
    while not list(mail_dir.glob("*.eml")):
        assert time.monotonic() < deadline, f"no mail caught:\n{dev.output}"
        time.sleep(0.05)
    (path,) = mail_dir.glob("*.eml")
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["Subject"] == "Hello from dev"
    assert message["Message-ID"] == response.json()["message_id"]
