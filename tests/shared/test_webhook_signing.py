"""Standard Webhooks signatures: the specification's published test vector, and the
`standardwebhooks` package's verifier accepting what we sign (with either secret mid-rotation)."""

import base64
from datetime import UTC, datetime

import pytest
from forgestack_shared.webhook_signing import new_secret, sign, signature_header
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# The specification's example (standard-webhooks, spec/standard-webhooks.md and its libraries).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specifications_test_vector() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_secrets_are_whsec_and_at_least_24_random_bytes() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) >= 24


def _headers(msg_id: str, ts: int, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def test_the_reference_verifier_accepts_our_signature() -> None:
    secret, body = new_secret(), '{"type":"invoice.paid","data":{"amount":"12€"}}'.encode()
    ts = int(datetime.now(UTC).timestamp())
    header = signature_header([secret], "msg_1", ts, body)
    assert Webhook(secret).verify(body.decode(), _headers("msg_1", ts, header))
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body.decode(), _headers("msg_1", ts, header))


def test_during_rotation_either_secret_verifies() -> None:
    new, old, body = new_secret(), new_secret(), b'{"a":1}'
    ts = int(datetime.now(UTC).timestamp())
    header = signature_header([new, old], "msg_2", ts, body)
    assert len(header.split(" ")) == 2
    for secret in (new, old):
        Webhook(secret).verify(body.decode(), _headers("msg_2", ts, header))
