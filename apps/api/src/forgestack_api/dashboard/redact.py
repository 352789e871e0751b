"""Masks values whose key names a secret before a job's data, options or result reach a page.

The dashboard shows payloads to people who may not hold the secrets inside them (a member's view
of an owner's job); masking by key name is coarse but never shows a token because of its shape."""

import re
from typing import Any

SECRET_KEY = re.compile(
    r"secret|passw(or)?d|token|api[-_]?key|authori[sz]ation|credential|private[-_]?key|cookie",
    re.IGNORECASE,
)
MASK = "•••••• (redacted)"


def redact(value: Any) -> Any:
    """A copy with every value under a secret-named key (at any depth) replaced by `MASK`."""
    if isinstance(value, dict):
        return {
            key: MASK if isinstance(key, str) and SECRET_KEY.search(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value
