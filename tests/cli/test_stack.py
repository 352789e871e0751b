"""The pieces of `forgestack dev` that need no processes: URL redaction and the API address."""

from pathlib import Path

import pytest
from forgestack_cli.stack import DevStack, redact_url
from forgestack_shared.settings import Settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:hunter2@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        (
            "postgresql+asyncpg://app:hunter2@127.0.0.1:5432/forgestack",
            "postgresql+asyncpg://app:***@127.0.0.1:5432/forgestack",
        ),
        ("postgresql+asyncpg://app@127.0.0.1/db", "postgresql+asyncpg://app@127.0.0.1/db"),
    ],
)
def test_redact_url_hides_passwords_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("host", "base"),
    [
        ("127.0.0.1", "http://127.0.0.1:8123"),
        ("0.0.0.0", "http://127.0.0.1:8123"),
        ("::1", "http://[::1]:8123"),
    ],
)
def test_api_url_is_one_a_browser_can_open(host: str, base: str, tmp_path: Path) -> None:
    settings = Settings(api_host=host, api_port=8123, forgestack_data_dir=tmp_path)
    assert DevStack.create(settings).api_base_url == base


def test_children_get_an_absolute_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    stack = DevStack.create(Settings(forgestack_data_dir=Path("rel/data")))
    assert stack.env["FORGESTACK_DATA_DIR"] == str(tmp_path / "rel" / "data")
    assert (tmp_path / "rel" / "data").is_dir()
