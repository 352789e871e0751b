"""Scheduled jobs (arq `cron(...)` entries). Each tick runs once across all workers: ticks are
enqueued with an idempotent id, see forgestack_queue.cron."""

from arq.cron import CronJob

CRON_JOBS: list[CronJob] = []
