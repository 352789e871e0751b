"""The webhook cron jobs: the delivery log is pruned past its retention, and endpoints that have
failed every attempt for the whole window are disabled, with an audit event saying so."""

from datetime import UTC, datetime, timedelta
from typing import Any

from loguru import logger

from ..resources import RESOURCES_KEY, WorkerResources

PRUNE_REASON = "webhook delivery log retention (all organisations)"
SWEEP_REASON = "webhook endpoints failing past the auto-disable window (all organisations)"


def _resources(ctx: dict[str, Any]) -> WorkerResources:
    res = ctx.get(RESOURCES_KEY)
    if not isinstance(res, WorkerResources):
        raise RuntimeError("worker resources are not open: is on_startup wired?")
    return res


async def prune_webhook_deliveries(ctx: dict[str, Any]) -> int:
    # The database layer loads with the worker's resources, not with this module (start-up).
    from forgestack_db.webhooks import prune_deliveries

    res = _resources(ctx)
    cutoff = datetime.now(UTC) - timedelta(days=res.settings.webhook_delivery_retention_days)
    async with res.db.service_context(PRUNE_REASON) as session:
        removed = await prune_deliveries(session, cutoff)
    logger.info("pruned {} webhook deliveries created before {}", removed, cutoff.isoformat())
    return removed


async def sweep_failing_webhook_endpoints(ctx: dict[str, Any]) -> int:
    from forgestack_db.webhooks import disable_endpoint, endpoints_failing_since

    res = _resources(ctx)
    window = res.settings.webhook_disable_after_s
    now = datetime.now(UTC)
    async with res.db.service_context(SWEEP_REASON) as session:
        failing = await endpoints_failing_since(session, now - timedelta(seconds=window))
        for endpoint in failing:
            reason = f"every delivery failed for {window} s (since {endpoint.failing_since})"
            await disable_endpoint(session, endpoint, reason, now)
            logger.warning("webhook endpoint {} disabled: {}", endpoint.id, reason)
    return len(failing)
