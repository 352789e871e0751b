"""Entry module for `uv run arq worker.WorkerSettings`, written as arq's docs teach.

`use_forge_worker()` makes arq's CLI build our `ForgeWorker` (forgestack_queue.arq_cli): the same
`WorkerSettings`, served by the job layer (atomic claims, leases, retries, retention). Settings
are read once, here, rather than in any library module."""

from arq.connections import RedisSettings
from forgestack_queue.arq_cli import use_forge_worker
from forgestack_queue.serializer import arq_job_deserializer, arq_job_serializer
from forgestack_shared.catalog import CATALOG
from forgestack_shared.dev_redis import dev_redis_url
from forgestack_shared.logging import configure_logging
from forgestack_shared.settings import get_settings
from forgestack_worker.cron import CRON_JOBS
from forgestack_worker.registry import FUNCTIONS
from forgestack_worker.settings import on_shutdown, on_startup

use_forge_worker()
settings = get_settings()
configure_logging(settings.log_level, json=settings.log_json, component="worker")


class WorkerSettings:
    functions = FUNCTIONS
    cron_jobs = CRON_JOBS
    on_startup = on_startup
    on_shutdown = on_shutdown
    redis_settings = RedisSettings.from_dsn(
        settings.redis_url
        or dev_redis_url(settings.forgestack_data_dir)
        or settings.effective_redis_url
    )
    max_jobs = settings.worker_concurrency
    job_completion_wait = settings.worker_shutdown_grace_s
    health_check_key = f"{settings.queue_prefix}:worker:health"
    health_check_interval = 10
    job_serializer = arq_job_serializer
    job_deserializer = arq_job_deserializer
    # ForgeStack's own settings: the key prefix, and each queue's payload model and defaults.
    queue_prefix = settings.queue_prefix
    queue_contracts = CATALOG
