"""What one delivery attempt sends and how its answer is judged: the Standard Webhooks headers,
and the status rules (2xx delivered, 410 disables, 429/503 honour Retry-After, the rest retry)."""

import email.utils
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from forgestack_shared.webhook_signing import signature_header

USER_AGENT = "ForgeStack-Webhooks/1.0"
STORED_BODY = 4 * 1024
"""Characters of a response body kept in the delivery log."""

Verdict = Literal["delivered", "gone", "retry", "throttled"]


@dataclass(frozen=True, slots=True)
class SignedRequest:
    headers: dict[str, str]
    """Everything sent, the signature included."""

    @property
    def loggable_headers(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items() if k != "webhook-signature"}


def signed_request(
    msg_id: str, body: bytes, secrets: list[str], now: float | None = None
) -> SignedRequest:
    timestamp = int(time.time() if now is None else now)
    return SignedRequest(
        headers={
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
        }
    )


def verdict(status: int, retry_after_s: float | None) -> Verdict:
    if 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "gone"
    if status in (429, 503) and retry_after_s is not None:
        return "throttled"
    return "retry"


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def stored_body(body: bytes, truncated: bool) -> str:
    text = body.decode("utf-8", "replace")
    if len(text) > STORED_BODY or truncated:
        return text[:STORED_BODY] + "\n[truncated]"
    return text
