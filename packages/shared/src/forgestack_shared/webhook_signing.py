"""Standard Webhooks secrets and signatures (https://www.standardwebhooks.com/).

A secret is `whsec_` + base64 of random bytes; the signature is `v1,` + base64 of HMAC-SHA256
over `{webhook-id}.{webhook-timestamp}.{body}`. Written here over `hmac` rather than taken from the
`standardwebhooks` package, whose `sign` takes the body as `str`: we sign the exact bytes we send.
The package's verifier checks our deliveries in the tests."""

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32
"""Above the specification's 24-byte minimum."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature per live secret, space-separated: during a rotation the receiver accepts
    whichever secret it holds."""
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)
