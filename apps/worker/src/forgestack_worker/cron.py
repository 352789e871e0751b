"""Scheduled jobs (arq `cron(...)` entries). Each tick runs once across all workers: ticks are
enqueued with an idempotent id, see forgestack_queue.cron. A tick that raises is a failed job in
the `cron` queue's failed store, like any other job.

- Retention sweep (every 5 minutes): the finish script trims by the rule each job was enqueued
  with; the sweep applies each queue's current rule to every finished job (jobs enqueued under a
  looser rule, or kept by an older version), through `Queue.trim`.
- Queue health (every minute): counts per queue and state, logged and kept in Redis for a day.
- Idle API keys (daily): a key nobody used for API_KEY_IDLE_REVOKE_DAYS is a leaked-credential
  risk with no user to miss it; revoking it is the control SaaS security reviews ask for, and it
  needs no schema change (audit rows, the other candidate, are append-only by design).
- Webhooks: prune delivery rows past WEBHOOK_DELIVERY_RETENTION_DAYS (daily) and disable endpoints
  failing for WEBHOOK_DISABLE_AFTER_S (every 5 minutes).
"""

from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from arq.cron import CronJob, cron
from forgestack_queue.cron import CRON_OPTIONS, CRON_QUEUE
from forgestack_shared.catalog import CATALOG
from loguru import logger

from .handlers.webhook_maintenance import (
    prune_webhook_deliveries,
    sweep_failing_webhook_endpoints,
)
from .resources import RESOURCES_KEY, WorkerResources

if TYPE_CHECKING:
    from forgestack_queue.retention import QueueRetention

# The retention sweep and the queue-health snapshot are imported where they are used: the worker
# loads them with its resources (forgestack_worker.resources), on a thread beside its first
# claims, not with this module.


@cache
def retention_rules() -> dict[str, "QueueRetention"]:
    """Each queue's current rule, from the catalog's defaults (and the cron queue's own)."""
    from forgestack_queue.retention import QueueRetention

    return {
        **{
            name.value: QueueRetention(
                spec.defaults.remove_on_complete, spec.defaults.remove_on_fail
            )
            for name, spec in CATALOG.items()
        },
        CRON_QUEUE: QueueRetention(CRON_OPTIONS.remove_on_complete, CRON_OPTIONS.remove_on_fail),
    }


SERVICE_REASON = "cron: revoke idle API keys"


def _resources(ctx: dict[str, Any]) -> WorkerResources:
    res = ctx.get(RESOURCES_KEY)
    if not isinstance(res, WorkerResources):
        raise RuntimeError("worker resources are not open: is on_startup wired?")
    return res


async def sweep_job_retention(ctx: dict[str, Any]) -> dict[str, int]:
    from forgestack_queue.retention import sweep_retention

    prefix = _resources(ctx).settings.queue_prefix
    removed = await sweep_retention(ctx["redis"], retention_rules(), prefix=prefix)
    totals = {queue: sum(by_state.values()) for queue, by_state in removed.items()}
    logger.info("retention sweep removed {} jobs: {}", sum(totals.values()), totals)
    return totals


async def record_queue_health(ctx: dict[str, Any]) -> dict[str, dict[str, int]]:
    from forgestack_queue.queue_stats import record_snapshot

    prefix = _resources(ctx).settings.queue_prefix
    counts = await record_snapshot(ctx["redis"], prefix=prefix)
    for queue, by_state in counts.queues.items():
        logger.bind(queue=queue).info(
            "queue health {}", " ".join(f"{s.value}={n}" for s, n in by_state.items())
        )
    return {q: {s.value: n for s, n in by_state.items()} for q, by_state in counts.queues.items()}


async def revoke_idle_keys(ctx: dict[str, Any]) -> int:
    # The database layer loads with the worker's resources, not with this module (start-up).
    from forgestack_db.api_keys import revoke_idle_api_keys

    res = _resources(ctx)
    days = res.settings.api_key_idle_revoke_days
    if days == 0:
        return 0
    async with res.db.service_context(SERVICE_REASON) as session:
        revoked = await revoke_idle_api_keys(session, timedelta(days=days))
    for key in revoked:
        logger.warning(
            "revoked API key {} of organisation {}: unused for {} days",
            key.prefix,
            key.org_id,
            days,
        )
    return len(revoked)


CRON_JOBS: list[CronJob] = [
    cron(sweep_job_retention, minute=set(range(0, 60, 5)), second=7),
    cron(record_queue_health, second=0),
    cron(revoke_idle_keys, hour=3, minute=17, second=30),
    cron(prune_webhook_deliveries, hour={3}, minute={17}, name="prune-webhook-deliveries"),
    cron(
        sweep_failing_webhook_endpoints,
        minute=set(range(0, 60, 5)),
        name="sweep-webhook-endpoints",
    ),
]
