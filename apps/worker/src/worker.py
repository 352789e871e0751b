"""Entry module for `uv run arq worker.WorkerSettings`, written as arq's docs teach.

`use_forge_worker()` makes arq's CLI build our `ForgeWorker` (forgestack_queue.arq_cli): the same
`WorkerSettings`, served by the job layer (atomic claims, leases, retries, retention). Settings
are read once, here, rather than in any library module.
Redis need not be up yet: the worker waits for it (ForgeWorker.main), so a fleet restarted in
any order comes up by itself.

Nothing here imports the database layer, Jinja2 or httpx: on_startup loads them on a thread and
checks the database login (an unsafe one stops the worker before any handler runs) while the
worker claims its first jobs (forgestack_worker.settings); it builds the catalog's validators
there too. OpenTelemetry loads only with TRACING_ENABLED (forgestack_queue.tracing). The imports
run with the garbage collector paused (forgestack_worker.gc_pause), and without loguru's own
stderr sink, which configure_logging replaces anyway (forgestack_worker.log_sink). Settings are
read and checked in full here, before the first claim: a bad one stops the worker with its one
line and claims nothing (tests/e2e/test_startup_errors.py)."""

from forgestack_worker.gc_pause import collection_paused
from forgestack_worker.log_sink import default_sink_skipped

with collection_paused(), default_sink_skipped():
    from forgestack_queue.arq_cli import use_forge_worker
    from forgestack_queue.serializer import arq_job_deserializer, arq_job_serializer
    from forgestack_shared.catalog import CATALOG
    from forgestack_shared.logging import configure_logging
    from forgestack_shared.redis_url import parse_redis_url
    from forgestack_shared.startup import (
        check_production,
        exit_on_startup_error,
        load_settings,
    )
    from forgestack_shared.tracing import configure_tracing
    from forgestack_worker.cron import CRON_JOBS
    from forgestack_worker.registry import FUNCTIONS
    from forgestack_worker.settings import on_shutdown, on_startup

    with exit_on_startup_error("worker"):
        _settings = load_settings()
        check_production(_settings, needs_admin_key=False)

    use_forge_worker()
    configure_logging(_settings.log_level, json=_settings.log_json, component="worker")
    configure_tracing(_settings.tracing_enabled, "forgestack-worker")


class WorkerSettings:
    functions = FUNCTIONS
    cron_jobs = CRON_JOBS
    on_startup = on_startup
    on_shutdown = on_shutdown
    redis_settings = parse_redis_url(_settings.effective_redis_url)
    redis_cluster = _settings.redis_cluster
    max_jobs = _settings.worker_concurrency
    job_completion_wait = _settings.worker_shutdown_grace_s
    health_check_key = f"{_settings.queue_prefix}:worker:health"
    health_check_interval = 10
    job_serializer = arq_job_serializer
    job_deserializer = arq_job_deserializer
    # ForgeStack's own settings: the key prefix, and each queue's payload model and defaults.
    queue_prefix = _settings.queue_prefix
    queue_contracts = CATALOG
    lease_ms = _settings.worker_lease_ms
    heartbeat_ms = _settings.worker_heartbeat_ms
    events_max_len = _settings.events_max_len
    events_result_max_bytes = _settings.events_result_max_bytes
    # Calls from a plain arq pool (arq's own queue) are served; pickled ones only when allowed.
    arq_intake_pickle = _settings.worker_arq_pickle
    limits = {spec.name.value: spec.limits for spec in CATALOG.values()}
