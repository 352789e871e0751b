"""Process settings, read from the environment or `.env` once per process through `get_settings()`."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    api_key_idle_revoke_days: int = Field(
        default=180,
        ge=0,
        description="The worker's daily cron revokes API keys unused this long; 0 keeps them.",
    )

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

    allow_superuser_db: bool = Field(
        default=False,
        description="Development only: let the app connect to PostgreSQL as superuser.",
    )

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
