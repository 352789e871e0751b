"""Settings read as people write them: enums in any case, empty means unset, every REDIS_URL
form we document (Sentinel included) parsed, anything else refused with the accepted forms."""

from pathlib import Path

import pytest
from forgestack_shared.redact import redact_url
from forgestack_shared.redis_url import RedisUrlError, parse_redis_url
from forgestack_shared.settings import Environment, Settings
from pydantic import ValidationError
from pydantic_settings import DotEnvSettingsSource


@pytest.mark.parametrize("given", ["debug", "Debug", " DEBUG "])
def test_log_level_in_any_case(given: str) -> None:
    assert Settings(log_level=given).log_level == "DEBUG"


@pytest.mark.parametrize("given", ["prod", "PROD", "Prod"])
def test_environment_in_any_case(given: str) -> None:
    assert Settings(environment=given).environment is Environment.PROD


def test_environment_defaults_to_dev_and_refuses_others() -> None:
    assert Settings().environment is Environment.DEV
    with pytest.raises(ValidationError, match="environment"):
        Settings(environment="staging")


def test_an_empty_value_means_unset() -> None:
    settings = Settings(forgestack_admin_api_key="", redis_url=" ", smtp_password="")
    assert settings.forgestack_admin_api_key is None
    assert settings.smtp_password is None
    assert settings.redis_url is None


@pytest.mark.parametrize(
    ("url", "host", "port", "db"),
    [
        ("redis://127.0.0.1:6379/0", "127.0.0.1", 6379, 0),
        ("redis://redis:6380/3", "redis", 6380, 3),
        ("rediss://cache.example:6380/1", "cache.example", 6380, 1),
    ],
)
def test_plain_redis_urls(url: str, host: str, port: int, db: int) -> None:
    parsed = parse_redis_url(url)
    assert (parsed.host, parsed.port, parsed.database, parsed.sentinel) == (host, port, db, False)
    assert parsed.ssl is url.startswith("rediss")


def test_a_sentinel_url_names_every_sentinel_the_master_and_the_db() -> None:
    parsed = parse_redis_url("redis+sentinel://app:s%40cret@s1:26379,s2:26380,[::1]/jobs/2")
    assert parsed.sentinel is True
    assert parsed.host == [("s1", 26379), ("s2", 26380), ("::1", 26379)]
    assert parsed.sentinel_master == "jobs"
    assert parsed.database == 2
    assert (parsed.username, parsed.password) == ("app", "s@cret")


def test_a_sentinel_url_without_db_uses_db_0() -> None:
    parsed = parse_redis_url("redis+sentinel://127.0.0.1:26379/mymaster")
    assert (parsed.sentinel_master, parsed.database) == ("mymaster", 0)


@pytest.mark.parametrize(
    "url",
    [
        "localhost:6379",
        "http://127.0.0.1:6379",
        "redis://",
        "redis://127.0.0.1:port/0",
        "redis://127.0.0.1:6379/zero",
        "redis+sentinel://127.0.0.1:26379",
        "redis+sentinel://127.0.0.1:26379/master/0/extra",
        "redis+sentinel:///mymaster",
        "redis+sentinel://h:notaport/mymaster",
        "redis://:secret@[::1/0",
        "redis+sentinel://[::1:26379/mymaster",
    ],
)
def test_anything_else_is_refused_with_the_accepted_forms(url: str) -> None:
    with pytest.raises(RedisUrlError, match=r"redis\+sentinel://host:26379"):
        parse_redis_url(url)
    with pytest.raises(ValidationError, match="redis_url"):
        Settings(redis_url=url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis+sentinel://u:hunter2@a:1,b:2/m/0", "redis+sentinel://u:***@a:1,b:2/m/0"),
        ("redis+sentinel://a:1,b:2/m/0", "redis+sentinel://a:1,b:2/m/0"),
        ("postgresql+asyncpg://app@h/db", "postgresql+asyncpg://app@h/db"),
    ],
)
def test_redacted_urls_keep_everything_but_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_dotenv_file_is_read_and_an_absent_one_costs_no_second_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dotenv source walks every field even when there is no `.env`: it is left out then
    (a worker reads its settings before its first claim); a `.env` is read as before, under the
    environment, and an empty entry in it still means unset."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SMTP_HOST", raising=False)
    monkeypatch.delenv("SMTP_USERNAME", raising=False)
    monkeypatch.setenv("WEBHOOK_TIMEOUT_S", "7")
    walked: list[int] = []
    read = DotEnvSettingsSource.__call__

    def counted(self: DotEnvSettingsSource) -> dict[str, object]:
        walked.append(1)
        return read(self)

    monkeypatch.setattr(DotEnvSettingsSource, "__call__", counted)
    assert Settings().smtp_host is None
    assert walked == []

    (tmp_path / ".env").write_text("SMTP_HOST=mail.example\nWEBHOOK_TIMEOUT_S=9\nSMTP_USERNAME=\n")
    settings = Settings()
    assert walked == [1]
    assert settings.smtp_host == "mail.example"
    assert settings.webhook_timeout_s == 7.0  # the environment wins over the file
    assert settings.smtp_username is None
