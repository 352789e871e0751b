"""Where settings come from (forgestack_shared.settings_source): keyword arguments, then the
environment (any case), then `.env`, then the default; a bad value from any of them fails with the
setting's name, as pydantic-settings did."""

import types
import typing
from pathlib import Path

import pytest
from forgestack_shared.settings import Settings
from pydantic import BaseModel, SecretStr, ValidationError


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    path.write_text(
        "API_PORT=8101\nLOG_LEVEL=warning\nSMTP_HOST=mail.example\n"
        "QUEUE_PREFIX=${FS_TEST_PREFIX}-x\nNOT_A_SETTING=1\nexport WORKER_CONCURRENCY=3\n"
    )
    return path


def test_keyword_beats_environment_beats_env_file_beats_default(
    env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("API_PORT", "LOG_LEVEL", "SMTP_HOST", "QUEUE_PREFIX", "WORKER_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FS_TEST_PREFIX", "pre")
    monkeypatch.setenv("api_port", "8102")  # any case, as the environment may spell it
    monkeypatch.setenv("Log_Level", "error")
    s = Settings(_env_file=env_file, log_level="debug")
    assert s.log_level == "DEBUG"  # keyword
    assert s.api_port == 8102  # environment over the file
    assert s.smtp_host == "mail.example"  # the file
    assert s.queue_prefix == "pre-x"  # the file, its ${VARIABLE} expanded
    assert s.worker_concurrency == 3  # `export NAME=` lines too
    assert s.api_workers == 1  # the default
    assert Settings(_env_file=None).smtp_host is None  # no file read


def test_the_env_file_is_read_from_the_working_directory(
    env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMTP_HOST", raising=False)
    monkeypatch.chdir(env_file.parent)
    assert Settings().smtp_host == "mail.example"


def test_a_bad_value_in_the_env_file_names_its_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORKER_LEASE_MS", raising=False)
    (tmp_path / ".env").write_text("WORKER_LEASE_MS=10\n")
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=tmp_path / ".env")
    assert [e["loc"] for e in caught.value.errors()] == [("worker_lease_ms",)]


SCALARS = (str, int, float, bool, Path, SecretStr, type(None))


def _scalar(annotation: object) -> bool:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return all(_scalar(arg) for arg in typing.get_args(annotation))
    if typing.get_origin(annotation) is typing.Literal:
        return True
    return isinstance(annotation, type) and (
        issubclass(annotation, SCALARS) and not issubclass(annotation, BaseModel)
    )


def test_every_setting_is_a_scalar_the_source_passes_as_text() -> None:
    """settings_source hands pydantic the variables' text, which suits scalars only: a list,
    dict or model setting would need JSON decoding there first (pydantic-settings did that)."""
    complex_ = [n for n, f in Settings.model_fields.items() if not _scalar(f.annotation)]
    assert complex_ == []
