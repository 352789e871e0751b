"""Process settings, read from the environment or `.env` once per process through `get_settings()`."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .ssrf import parse_allowlist

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class Settings(BaseSettings):
    """Names match the environment variables exactly (case-insensitive), so the README table is the doc."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        description="Redis for the queues; unset means 127.0.0.1:6379 (dev: embedded).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL the API and worker use; unset means SQLite under the data "
        "dir. On PostgreSQL it must log in as a member of DATABASE_APP_ROLE: not superuser, not "
        "BYPASSRLS, not the tables' owner.",
    )
    database_migration_url: str | None = Field(
        default=None,
        description="URL `forgestack db upgrade` uses: the schema owner's login. Unset means "
        "DATABASE_URL (fine for SQLite; on PostgreSQL the owner must differ from the app login).",
    )
    database_app_role: str = Field(
        default="forgestack_app",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL role (NOLOGIN) the migrations create and grant table access and "
        "row-level-security policies to; the app's login role is made a member of it.",
    )
    forgestack_data_dir: Path = Field(
        default=Path(".forgestack"),
        description="Where dev data lives (embedded Redis, SQLite, mail).",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = Field(default=1, ge=1)
    forgestack_admin_api_key: SecretStr | None = Field(
        default=None, description="Operator key accepted as an admin bearer token."
    )
    log_level: Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_json: bool = False
    worker_concurrency: int = Field(default=10, ge=1)
    worker_shutdown_grace_s: int = Field(
        default=10,
        ge=0,
        description="On SIGTERM, seconds running jobs may finish before they are released.",
    )
    queue_prefix: str = Field(default="fs", pattern=r"^[A-Za-z0-9_-]+$")

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_timeout_s: float = 10.0
    smtp_max_connections: int = Field(
        default=4, ge=1, description="SMTP connections one worker process keeps open at most."
    )
    mail_from: str = "ForgeStack <no-reply@forgestack.invalid>"

    webhook_allowed_cidrs: str = Field(
        default="",
        description="Comma-separated CIDRs webhook URLs may reach although the SSRF guard refuses "
        "them (loopback, private, ...): for tests and private deployments. Empty by default.",
    )
    webhook_timeout_s: float = Field(
        default=15.0, gt=0, description="Seconds one delivery may take: connect, send and read."
    )
    webhook_retry_schedule_s: str = Field(
        default="5,300,1800,7200,18000,36000,36000,86400,86400",
        pattern=r"^\d+(,\d+)*$",
        description="Seconds before retry 1, 2, ... of a failed delivery (comma-separated); an "
        "endpoint may set its own. The default spans about 3.4 days.",
    )
    webhook_disable_after_s: int = Field(
        default=5 * 86400,
        gt=0,
        description="An endpoint failing every delivery for this long is disabled (audited).",
    )
    webhook_delivery_retention_days: int = Field(
        default=30, ge=1, description="Delivery log rows older than this are pruned by cron."
    )

    allow_superuser_db: bool = Field(
        default=False,
        description="Development only: let the app connect to PostgreSQL as superuser.",
    )

    @field_validator("webhook_allowed_cidrs")
    @classmethod
    def _cidrs_parse(cls, value: str) -> str:
        """A typo here must stop the process at start, not fail every delivery later."""
        parse_allowlist(value)
        return value

    @property
    def webhook_retry_schedule(self) -> list[int]:
        return [int(part) for part in self.webhook_retry_schedule_s.split(",")]

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or DEFAULT_REDIS_URL

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.forgestack_data_dir / 'forgestack.db'}"


@lru_cache
def get_settings() -> Settings:
    """Cached so a process reads its environment once; tests call `get_settings.cache_clear()`."""
    return Settings()
