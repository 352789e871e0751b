"""Start-up checks shared by the API, the worker and `forgestack dev`: a bad setting (and, for
`forgestack dev` only, an unreachable Redis) stops the process with one line that names the
setting and the fix. The API and the worker wait for an unreachable Redis instead: a fleet
restarted in any order must come up by itself.

A traceback helps nobody who mistyped REDIS_URL, so it is shown only when LOG_LEVEL asks for
DEBUG (or TRACE). Values are echoed only for settings that cannot hold a secret, and URLs only
with their password replaced."""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from pydantic import SecretStr, ValidationError

from .redact import redact_url
from .redis_url import SENTINEL_SCHEME, parse_redis_url, sync_client
from .settings import Environment, Settings, get_settings

EXIT_CODE = 2
"""What a usage error exits with (click's convention): distinct from a crash's 1."""


class StartupError(Exception):
    """A setting the process cannot start with; `str()` is the one line printed."""

    def __init__(self, setting: str, problem: str, fix: str, *, named: bool = False) -> None:
        """`named`: the problem already starts with the setting's name."""
        super().__init__(f"{problem if named else f'{setting}: {problem}'}; {fix}")
        self.setting = setting


def traceback_wanted() -> bool:
    """Read from the raw environment: the settings themselves may be what failed."""
    return os.environ.get("LOG_LEVEL", "").strip().upper() in {"DEBUG", "TRACE"}


def _shown_value(name: str, value: Any) -> str:
    field = Settings.model_fields.get(name)
    if field is not None and field.annotation in (SecretStr, SecretStr | None):
        return ""
    if not isinstance(value, str | int | float):
        return ""
    text = str(value)
    if "://" in text:
        text = redact_url(text)
    return f"={text!r}"


def from_validation_error(exc: ValidationError) -> StartupError:
    """Every field error on one line; the first setting named is the one reported."""
    problems = []
    names = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "settings"
        names.append(name.upper())
        message = str(error["msg"]).removeprefix("Value error, ")
        shown = _shown_value(name, error.get("input"))
        problems.append(f"{name.upper()}{shown} is invalid: {message}")
    fix = f"set {' and '.join(dict.fromkeys(names))} in the environment or .env"
    return StartupError(names[0], "; ".join(problems), fix, named=True)


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        raise from_validation_error(exc) from exc


def check_production(settings: Settings, *, needs_admin_key: bool) -> None:
    """In prod, the dev conveniences are refused instead of silently used."""
    if settings.environment is not Environment.PROD:
        return
    if not settings.database_url:
        raise StartupError(
            "DATABASE_URL",
            "unset, and ENVIRONMENT=prod refuses the SQLite fallback",
            "set DATABASE_URL=postgresql+asyncpg://<app login>@<host>/<db>",
        )
    if needs_admin_key and settings.forgestack_admin_api_key is None:
        raise StartupError(
            "FORGESTACK_ADMIN_API_KEY",
            "unset, and ENVIRONMENT=prod needs an operator key",
            "set FORGESTACK_ADMIN_API_KEY to a long random secret",
        )


def check_redis(settings: Settings, *, timeout_s: float = 2.0) -> None:
    """One PING, so an unreachable Redis stops the process now rather than after arq's retries."""
    url = settings.effective_redis_url
    client = sync_client(parse_redis_url(url), timeout_s=timeout_s)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        where = "the Sentinel set" if url.startswith(SENTINEL_SCHEME) else "Redis"
        raise StartupError(
            "REDIS_URL",
            f"cannot reach {where} at {redact_url(url)} ({type(exc).__name__})",
            "start it, or set REDIS_URL to one that answers",
        ) from exc
    finally:
        client.close()


@contextmanager
def exit_on_startup_error(component: str) -> Iterator[None]:
    """Turns a `StartupError` into its one line on stderr and exit code 2."""
    try:
        yield
    except StartupError as exc:
        if traceback_wanted():
            raise
        print(f"{component}: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CODE) from None


def unsafe_database_login(reason: Exception) -> StartupError:
    """The database guard's refusal as a start-up error: its message already says the fix."""
    return StartupError("DATABASE_URL", str(reason).rstrip("."), "change DATABASE_URL")
