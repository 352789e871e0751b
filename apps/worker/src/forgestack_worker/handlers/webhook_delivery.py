"""Delivers one webhook: reads the delivery and its endpoint's secrets under the organisation's
tenant context, checks the URL against the SSRF guard again (DNS may have changed since the
endpoint was created), POSTs the signed bytes to the checked address, and records the attempt.

Failures retry on the schedule set when the delivery was enqueued (the endpoint's or the global
one), for days; a 429/503 with Retry-After waits at least that long (arq's `Retry(defer=)`); 410
disables the endpoint; a blocked address fails at once. Every attempt is written to the delivery
row before the job's outcome, so the log never shows less than happened."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from arq.worker import Retry
from forgestack_queue.errors import UnrecoverableError
from forgestack_queue.job import Job
from forgestack_shared.jobs.webhook_delivery import WebhookDeliveryData, WebhookDeliveryResult
from forgestack_shared.ssrf import BlockedUrlError, check_url, parse_allowlist

from ..resources import WorkerResources, resources

DISABLE_REASON = "webhook receiver answered 410 Gone: disable the endpoint"


if TYPE_CHECKING:
    from forgestack_db.models import WebhookDelivery, WebhookEndpoint

    from ..services.webhook_client import WebhookResponse

# The database layer, httpx and the request signing are imported where they are used: the worker
# loads them with its resources (forgestack_worker.resources), on a thread beside its first
# claims, not with this module.


class WebhookDeliveryError(Exception):
    """The receiver did not accept the delivery; the job layer retries it on its schedule."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt's outcome, as written to the delivery row."""

    request_headers: dict[str, str] | None = None
    response: "WebhookResponse | None" = None
    error: str | None = None


async def handle_webhook_delivery(job: Job[WebhookDeliveryData]) -> WebhookDeliveryResult:
    from forgestack_db.webhooks import load_delivery

    res = resources(job)
    data = job.data
    async with res.db.tenant_context(data.org_id) as session:
        loaded = await load_delivery(session, data.org_id, data.delivery_id)
    if loaded is None:
        raise UnrecoverableError(
            f"delivery {data.delivery_id} no longer exists (endpoint deleted or log pruned)"
        )
    delivery, endpoint = loaded
    if not endpoint.enabled:
        reason = f"endpoint disabled: {endpoint.disabled_reason or 'by its owner'}"
        await _record(res, data, job, Attempt(error=reason), final=True)
        raise UnrecoverableError(reason)
    attempt = await _send(res, job, delivery, endpoint)
    return await _conclude(res, job, endpoint, attempt)


async def _send(
    res: WorkerResources,
    job: Job[WebhookDeliveryData],
    delivery: "WebhookDelivery",
    endpoint: "WebhookEndpoint",
) -> Attempt:
    import httpx

    from ..services.webhook_client import DeliveryTimeoutError
    from ..services.webhook_request import signed_request

    body = delivery.payload.encode()
    request = signed_request(delivery.event_id, body, _live_secrets(endpoint))
    try:
        allowed = parse_allowlist(res.settings.webhook_allowed_cidrs)
        target = await check_url(endpoint.url, allowed, res.resolver)
    except BlockedUrlError as exc:
        blocked = Attempt(error=f"blocked: {exc}")
        await _record(res, job.data, job, blocked, final=True, endpoint_id=endpoint.id)
        raise UnrecoverableError(f"webhook URL refused by the SSRF guard: {exc}") from exc
    try:
        response = await res.webhook_client.post(target, request.headers, body)
    except (DeliveryTimeoutError, httpx.HTTPError, OSError) as exc:
        job.logger.info("webhook {} to endpoint {} failed: {}", delivery.id, endpoint.id, exc)
        return Attempt(request.loggable_headers, error=f"{type(exc).__name__}: {exc}"[:1000])
    job.logger.info(
        "webhook {} to endpoint {}: HTTP {} in {} ms",
        delivery.id,
        endpoint.id,
        response.status,
        response.duration_ms,
    )
    return Attempt(request.loggable_headers, response)


async def _conclude(
    res: WorkerResources,
    job: Job[WebhookDeliveryData],
    endpoint: "WebhookEndpoint",
    attempt: Attempt,
) -> WebhookDeliveryResult:
    from forgestack_db.webhooks import disable_endpoint, get_endpoint

    from ..services.webhook_request import retry_after_seconds, verdict

    data = job.data
    response = attempt.response
    status = response.status if response else None
    retry_after = retry_after_seconds(response.headers.get("retry-after")) if response else None
    judged = verdict(response.status, retry_after) if response else "retry"
    if judged == "delivered":
        await _record(res, data, job, attempt, delivered=True, endpoint_id=endpoint.id)
        return WebhookDeliveryResult(
            delivery_id=data.delivery_id, status_code=status, delivered=True
        )
    if judged == "gone":
        await _record(res, data, job, attempt, final=True, endpoint_id=endpoint.id)
        async with res.db.service_context(DISABLE_REASON) as session:
            fresh = await get_endpoint(session, data.org_id, endpoint.id)
            if fresh is not None and fresh.enabled:
                await disable_endpoint(session, fresh, "receiver answered 410 Gone", _now())
        raise UnrecoverableError("receiver answered 410 Gone: endpoint disabled")
    scheduled_ms = job.options.backoff.delay_for(job.attempt) if job.options.backoff else 0
    delay_s = max(retry_after or 0.0, scheduled_ms / 1000)
    await _record(
        res,
        data,
        job,
        attempt,
        final=job.is_last_attempt,
        retry_in_s=delay_s,
        endpoint_id=endpoint.id,
    )
    reason = attempt.error or _describe(response)
    if judged == "throttled":
        job.logger.info("receiver asked to retry after {} s: waiting {} s", retry_after, delay_s)
        raise Retry(defer=timedelta(seconds=delay_s))
    raise WebhookDeliveryError(reason)


def _describe(response: "WebhookResponse | None") -> str:
    if response is None:
        return "no response"
    if 300 <= response.status < 400:
        location = response.headers.get("location", "")
        return f"HTTP {response.status} redirect to {location[:200]!r} (redirects are not followed)"
    return f"HTTP {response.status}"


async def _record(
    res: WorkerResources,
    data: WebhookDeliveryData,
    job: Job[WebhookDeliveryData],
    attempt: Attempt,
    *,
    delivered: bool = False,
    final: bool = False,
    retry_in_s: float | None = None,
    endpoint_id: uuid.UUID | None = None,
) -> None:
    """Writes the attempt to the delivery row and, given `endpoint_id`, the endpoint's failure
    window (a refused address counts as a failure): two UPDATEs in one transaction."""
    from forgestack_db.models import DeliveryStatus
    from forgestack_db.webhooks import record_attempt, track_failure_window

    from ..services.webhook_request import stored_body

    now = _now()
    response = attempt.response
    values: dict[str, Any] = {
        "attempt": job.attempt,
        "request_headers": attempt.request_headers,
        "response_status": response.status if response else None,
        "response_body": stored_body(response.body, response.truncated) if response else None,
        "duration_ms": response.duration_ms if response else None,
        "error": None if delivered else (attempt.error or _describe(response))[:1000],
        "next_attempt_at": None,
    }
    if delivered:
        values |= {"status": DeliveryStatus.DELIVERED.value, "delivered_at": now}
    elif final:
        values |= {"status": DeliveryStatus.FAILED.value, "failed_at": now}
    elif retry_in_s is not None:
        values["next_attempt_at"] = now + timedelta(seconds=retry_in_s)
    async with res.db.tenant_context(data.org_id) as session:
        await record_attempt(session, data.org_id, data.delivery_id, values)
        if endpoint_id is not None:
            await track_failure_window(session, data.org_id, endpoint_id, delivered, now)


def _live_secrets(endpoint: "WebhookEndpoint") -> list[str]:
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > _now():
        return [endpoint.secret, endpoint.previous_secret]
    return [endpoint.secret]


def _now() -> datetime:
    return datetime.now(UTC)
