"""Scheduled jobs (arq `cron(...)` entries). Each tick runs once across all workers: ticks are
enqueued with an idempotent id, see forgestack_queue.cron."""

from arq.cron import CronJob, cron

from .handlers.webhook_maintenance import (
    prune_webhook_deliveries,
    sweep_failing_webhook_endpoints,
)

CRON_JOBS: list[CronJob] = [
    cron(prune_webhook_deliveries, hour={3}, minute={17}, name="prune-webhook-deliveries"),
    cron(
        sweep_failing_webhook_endpoints,
        minute=set(range(0, 60, 5)),
        name="sweep-webhook-endpoints",
    ),
]
