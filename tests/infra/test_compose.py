"""infra/compose.yaml: valid per the compose specification, the whole stack present, every
variable it sets in our containers a real setting, and its PostgreSQL the one the tests use."""

from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from forgestack_cli.db_commands import create_app_login_command
from forgestack_shared.settings import Settings

from tests.fixtures_db import DEFAULT_POSTGRES_URL
from tests.infra.manifests import (
    INFRA,
    ROOT,
    SETTINGS,
    env_file,
    interpolate,
    validate,
    variables_used,
    vendored_schema,
)

TEXT = (INFRA / "compose.yaml").read_text()
EXAMPLE = env_file(INFRA / ".env.example")
COMPOSE: dict[str, Any] = yaml.safe_load(interpolate(TEXT, EXAMPLE))
SERVICES: dict[str, Any] = COMPOSE["services"]
OURS = {name: s for name, s in SERVICES.items() if "build" in s}


def _password_env_option() -> str:
    option = next(p for p in create_app_login_command.params if p.name == "password_env")
    return str(option.default)


def test_compose_follows_the_compose_specification() -> None:
    validate(COMPOSE, vendored_schema("compose-spec"))


def test_every_variable_compose_reads_is_in_its_env_example() -> None:
    assert variables_used(TEXT) <= set(EXAMPLE), "add them to infra/.env.example"


def test_the_whole_stack_is_there() -> None:
    assert set(SERVICES) == {"redis", "postgres", "mailpit", "migrate", "api", "worker"}
    assert set(OURS) == {"migrate", "api", "worker"}
    for service in OURS.values():
        assert (ROOT / service["build"]["dockerfile"]).is_file()


def test_redis_keeps_an_append_only_file_on_a_volume() -> None:
    redis = SERVICES["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_our_containers_set_only_real_settings() -> None:
    """FORGESTACK_APP_DB_PASSWORD is what `forgestack db create-app-login` reads the password
    from (its --password-env), not a setting."""
    allowed = SETTINGS | {_password_env_option()}
    for name, service in OURS.items():
        assert set(service["environment"]) <= allowed, name


@pytest.mark.parametrize("name", ["api", "worker"])
def test_the_app_settings_load_and_pass_the_production_checks(name: str) -> None:
    from forgestack_shared.startup import check_production

    settings = Settings(
        _env_file=None, **{k.lower(): v for k, v in SERVICES[name]["environment"].items()}
    )  # type: ignore[call-arg]
    check_production(settings, needs_admin_key=name == "api")
    assert settings.environment == "prod"


def test_the_app_logs_in_as_the_login_the_migrate_service_creates() -> None:
    command = " ".join(SERVICES["migrate"]["command"])
    login = command.split("create-app-login", 1)[1].split()[0]
    app_url = urlsplit(SERVICES["api"]["environment"]["DATABASE_URL"])
    owner_url = urlsplit(SERVICES["migrate"]["environment"]["DATABASE_MIGRATION_URL"])
    assert app_url.username == login != owner_url.username
    assert app_url.password == SERVICES["migrate"]["environment"][_password_env_option()]
    assert SERVICES["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_workers_get_their_shutdown_grace_before_a_kill() -> None:
    worker = SERVICES["worker"]
    grace = int(worker["environment"]["WORKER_SHUTDOWN_GRACE_S"])
    assert int(worker["stop_grace_period"].removesuffix("s")) == grace + 5
    assert int(worker["deploy"]["replicas"]) >= 2


def test_the_mail_catcher_has_a_web_ui_and_the_worker_sends_to_it() -> None:
    assert any(p.endswith(":8025") for p in SERVICES["mailpit"]["ports"])
    assert SERVICES["worker"]["environment"]["SMTP_HOST"] == "mailpit"


def test_the_tests_postgresql_and_compose_agree() -> None:
    """Same user, loopback address and port; the tests' URL with compose's password is in
    infra/.env.example as TEST_POSTGRES_URL."""
    postgres = SERVICES["postgres"]
    assert "127.0.0.1:5432:5432" in postgres["ports"]
    default, documented = urlsplit(DEFAULT_POSTGRES_URL), urlsplit(EXAMPLE["TEST_POSTGRES_URL"])
    for url in (default, documented):
        assert (url.username, url.hostname, url.port) == ("postgres", "127.0.0.1", 5432)
        assert url.username == postgres["environment"]["POSTGRES_USER"]
    assert documented.password == EXAMPLE["POSTGRES_PASSWORD"]
    assert documented.path == default.path
