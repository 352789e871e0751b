"""Process settings, read from the environment or `.env` once per process through `get_settings()`.

Each field's description and `shown_default` are the README's configuration table and
`.env.example` (`python -m forgestack_shared.settings_doc --write` regenerates both)."""

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from .dev_redis import dev_redis_url
from .redis_url import parse_redis_url
from .ssrf import parse_allowlist

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

LogLevel = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]


class Environment(StrEnum):
    DEV = "dev"
    PROD = "prod"


def _shown(default: str) -> dict[str, Any]:
    """How the table shows a default that the type alone cannot (unset, or a dev override)."""
    return {"shown_default": default}


class Settings(BaseSettings):
    """Names match the environment variables exactly (case-insensitive), so the README table is the doc."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Environment = Field(
        default=Environment.DEV,
        description="`dev` or `prod`. In `prod` the API and the worker refuse to start on the "
        "SQLite fallback (DATABASE_URL unset), and the API without FORGESTACK_ADMIN_API_KEY.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis holding the queues: `redis://host:6379/0`, `rediss://` (TLS), "
        "`unix:///path.sock`, or a Sentinel set as "
        "`redis+sentinel://[user:password@]host:26379,host2:26379/<master>/<db>`.",
        json_schema_extra=_shown(
            f"unset: `{DEFAULT_REDIS_URL}` (`forgestack dev`: embedded server)"
        ),
    )
    redis_cluster: bool = Field(
        default=False,
        description="REDIS_URL names one node of a Redis Cluster (`redis://` or `rediss://`): the "
        "API and the worker use a cluster client and the job layer's tagged key layout, and "
        "the worker does not serve arq's own queue (docs/operations/redis-topologies.md).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL of the API and worker (`postgresql+asyncpg://...` or "
        "`sqlite+aiosqlite://...`). On PostgreSQL it must log in as a member of "
        "DATABASE_APP_ROLE: not superuser, not BYPASSRLS, not the tables' owner.",
        json_schema_extra=_shown("unset: SQLite at `$FORGESTACK_DATA_DIR/forgestack.db`"),
    )
    database_migration_url: str | None = Field(
        default=None,
        description="URL the migrations use: the schema owner's login (on PostgreSQL it must "
        "differ from the app login).",
        json_schema_extra=_shown("unset: `DATABASE_URL`"),
    )
    database_app_role: str = Field(
        default="forgestack_app",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL role (NOLOGIN) the migrations create and grant table access and "
        "row-level-security policies to; the app's login role is made a member of it.",
    )
    forgestack_data_dir: Path = Field(
        default=Path(".forgestack"),
        description="Where dev data lives: embedded Redis, SQLite, caught mail, the dev admin key.",
    )
    api_host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port the API listens on.")
    api_workers: int = Field(
        default=1, ge=1, description="uvicorn worker processes of `uv run api`."
    )
    api_max_body_bytes: int = Field(
        default=1_048_576,
        ge=1,
        description="Largest request body the API accepts; a larger one is `413 "
        "payload_too_large`, refused on its `Content-Length` or, for a chunked body, as soon as "
        "the bytes read pass the cap (never held whole).",
    )
    metrics_auth: Literal["operator", "open"] = Field(
        default="operator",
        description="Who may read `GET /metrics`: `operator` (the operator key, as a bearer "
        "token; Prometheus' `authorization` setting) or `open` (no key: only where the port is "
        "reachable by the scraper alone).",
    )
    tracing_enabled: bool = Field(
        default=False,
        description="OpenTelemetry spans per request and per job attempt, exported over OTLP/HTTP "
        "(`OTEL_EXPORTER_OTLP_ENDPOINT` and the other standard `OTEL_` variables).",
    )
    api_key_outage_grace_s: int = Field(
        default=300,
        ge=0,
        description="While the database is down, an organisation key this API process verified "
        "within this many seconds still works for routes that need only Redis (enqueue, emails, "
        "recording audit events); other keys get `503`. `0`: every key is `503` during an outage.",
    )
    api_key_cache_ttl_s: float = Field(
        default=5.0,
        ge=0,
        description="An organisation key the database verified is trusted by that API process "
        "for this many seconds without asking again (at most API_KEY_OUTAGE_GRACE_S). The "
        "revocation bound: a key revoked through the API is refused at once by the process that "
        "revoked it, and within this many seconds by every other API process (the same after "
        "`forgestack api-keys revoke` or the idle-key cron). `0`: every request asks the database.",
    )
    forgestack_admin_api_key: SecretStr | None = Field(
        default=None,
        description="The operator key (platform staff: every organisation, see Roles). Never "
        "logged or returned.",
        json_schema_extra=_shown(
            "unset (`forgestack dev`: kept in `$FORGESTACK_DATA_DIR/admin-api-key`)"
        ),
    )
    log_level: LogLevel = Field(
        default="INFO",
        description="`TRACE`, `DEBUG`, `INFO`, `SUCCESS`, `WARNING`, `ERROR` or `CRITICAL`, in "
        "any case. `DEBUG` also shows the traceback of a start-up error.",
    )
    log_json: bool = Field(default=False, description="JSON log lines (production).")
    worker_concurrency: int = Field(
        default=10, ge=1, description="Jobs one worker process runs at once."
    )
    worker_shutdown_grace_s: int = Field(
        default=10,
        ge=0,
        description="On SIGTERM, seconds running jobs may finish; the rest go back to `waiting` "
        "without spending an attempt.",
        json_schema_extra=_shown("`10` (`forgestack dev`: `3`)"),
    )
    worker_lease_ms: int = Field(
        default=30_000,
        ge=3_000,
        le=600_000,
        description="How long a running job's lease lasts (renewed every third of it): a "
        "SIGKILLed worker's job runs again elsewhere about this long after the kill. A slow "
        "but alive job keeps its lease however long it runs.",
    )
    worker_heartbeat_ms: int = Field(
        default=5_000,
        ge=100,
        description="How often each worker refreshes its entry in `GET /api/v1/workers`; a worker "
        "that stops beating drops out of the list within two of these.",
    )
    events_max_len: int = Field(
        default=10_000,
        ge=0,
        description="Approximate length each queue's event stream is capped at (`XADD MAXLEN ~`); "
        "`0` records no events. Workers apply it to their queues when they start.",
    )
    events_result_max_bytes: int = Field(
        default=16 * 1024,
        ge=0,
        description="Largest result (JSON bytes) a `completed` event carries, for waiters on a "
        "job removed as it completes; a larger one leaves only its size in the event, and such a "
        "wait answers that the result was too large to keep (HTTP 410). Kept jobs' results are "
        "read from the job whatever their size.",
    )
    worker_arq_pickle: bool = Field(
        default=False,
        description="Run calls a plain arq pool pickled (arq's default serializer) into arq's "
        "own queue. Unpickling runs whatever the writer chose: allow it only when nothing "
        "untrusted can write to this Redis. Off, such a call fails visibly with the reason.",
    )
    queue_prefix: str = Field(
        default="fs",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Prefix of every Redis key, so several deployments (or test runs) share one "
        "Redis.",
    )
    api_key_idle_revoke_days: int = Field(
        default=180,
        ge=0,
        description="The worker's daily cron revokes API keys unused (never used: since created) "
        "this many days; `0` keeps them.",
    )

    smtp_host: str | None = Field(
        default=None,
        description="SMTP server for notification emails; the worker's emails fail while unset.",
        json_schema_extra=_shown("unset (`forgestack dev`: its mail catcher)"),
    )
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP port.")
    smtp_username: str | None = Field(default=None, description="SMTP login, if needed.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_starttls: bool = Field(default=False, description="Upgrade the connection with STARTTLS.")
    smtp_tls: bool = Field(default=False, description="Connect with implicit TLS (port 465 style).")
    smtp_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds before an SMTP operation gives up (and the job is retried).",
    )
    smtp_max_connections: int = Field(
        default=4, ge=1, description="SMTP connections one worker process keeps open at most."
    )
    mail_from: str = Field(
        default="ForgeStack <no-reply@forgestack.invalid>",
        description="Sender of notification emails.",
    )

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
        description="Development only: let the app connect to PostgreSQL as a superuser.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """pydantic-settings' own order. Without a `.env` (or with an empty one) the dotenv source
        has nothing to add, yet walks every field again: about half of reading the settings,
        which every worker does before its first claim; it is left out then."""
        if isinstance(dotenv_settings, DotEnvSettingsSource) and not dotenv_settings.env_vars:
            return init_settings, env_settings, file_secret_settings
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _cluster_node_url(self) -> "Settings":
        """A cluster is reached through one node's address; Sentinel and unix sockets are not."""
        url = self.redis_url
        if self.redis_cluster and url and not url.startswith(("redis://", "rediss://")):
            raise ValueError(
                "REDIS_CLUSTER=true needs REDIS_URL to be one cluster node's redis:// or "
                "rediss:// URL"
            )
        return self

    @field_validator(
        "redis_url",
        "database_url",
        "database_migration_url",
        "forgestack_admin_api_key",
        "smtp_host",
        "smtp_username",
        "smtp_password",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`KEY=` in a .env or a manifest means unset, never an empty password or key."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("environment", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("redis_url")
    @classmethod
    def _accepted_redis_url(cls, value: str | None) -> str | None:
        if value is not None:
            parse_redis_url(value)
        return value

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
        """REDIS_URL; else the Redis a running `forgestack dev` embedded under this data dir (never
        on the default port), so `arq worker.WorkerSettings --check` beside it needs no variable."""
        return self.redis_url or dev_redis_url(self.forgestack_data_dir) or DEFAULT_REDIS_URL

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.forgestack_data_dir / 'forgestack.db'}"


@lru_cache
def get_settings() -> Settings:
    """Cached so a process reads its environment once; tests call `get_settings.cache_clear()`."""
    return Settings()
