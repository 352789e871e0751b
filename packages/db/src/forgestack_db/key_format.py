"""What an API key looks like and how it is stored: 256 random bits, kept as their SHA-256. Apart
from the table so the API's lean key lookup can hash a key without loading SQLModel.

A key looks like `fsk_1a2b3c4d_<43 url-safe characters>`; `fsk_1a2b3c4d` is its visible prefix,
enough to tell keys apart in a listing without revealing anything usable."""

import hashlib
import secrets
from datetime import timedelta

KEY_SCHEME = "fsk"
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""`last_used_at` is refreshed at most once a minute per key, so authentication stays a read."""


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_secret() -> tuple[str, str]:
    """(full key, visible prefix)."""
    prefix = f"{KEY_SCHEME}_{secrets.token_hex(4)}"
    return f"{prefix}_{secrets.token_urlsafe(32)}", prefix


def looks_like_key(token: str) -> bool:
    """Cheap shape test so random bearer tokens skip the database."""
    return token.startswith(f"{KEY_SCHEME}_") and 50 <= len(token) <= 80
