"""The judging rules of one attempt: status verdicts, Retry-After in both forms, the stored body,
and headers that never keep the signature."""

from datetime import UTC, datetime

import pytest
from forgestack_worker.services.webhook_request import (
    STORED_BODY,
    retry_after_seconds,
    signed_request,
    stored_body,
    verdict,
)


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (200, None, "delivered"),
        (204, None, "delivered"),
        (299, None, "delivered"),
        (301, None, "retry"),
        (302, None, "retry"),
        (410, None, "gone"),
        (429, 5.0, "throttled"),
        (503, 5.0, "throttled"),
        (429, None, "retry"),
        (500, 5.0, "retry"),
        (404, None, "retry"),
    ],
)
def test_verdicts(status: int, retry_after: float | None, expected: str) -> None:
    assert verdict(status, retry_after) == expected


def test_retry_after_as_seconds_or_an_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:01:30 GMT", now) == 90.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_the_stored_body_is_a_few_kib_and_says_when_it_was_cut() -> None:
    assert stored_body(b"short", truncated=False) == "short"
    long = stored_body(b"x" * 10_000, truncated=False)
    assert long.endswith("[truncated]") and len(long) < STORED_BODY + 20
    assert stored_body(b"x" * 10, truncated=True).endswith("[truncated]")


def test_the_loggable_headers_drop_the_signature() -> None:
    request = signed_request("msg_1", b"{}", ["whsec_" + "A" * 44], now=1_700_000_000)
    assert request.headers["webhook-timestamp"] == "1700000000"
    assert request.headers["webhook-signature"].startswith("v1,")
    assert "webhook-signature" not in request.loggable_headers
