"""JSON for every byte the job layer writes: pickle from Redis would let any writer run code."""

from typing import Any

import pydantic_core


def dumps(value: Any) -> bytes:
    """Pydantic's encoder, so models, datetimes, UUIDs and Decimals need no custom hooks."""
    return pydantic_core.to_json(value)


def loads(raw: bytes | str) -> Any:
    return pydantic_core.from_json(raw)


def arq_job_serializer(obj: dict[str, Any]) -> bytes:
    """For arq's own pool and worker (cron bookkeeping, arq-format jobs): JSON, not pickle."""
    return dumps(obj)


def arq_job_deserializer(raw: bytes) -> dict[str, Any]:
    value = loads(raw)
    if not isinstance(value, dict):
        raise ValueError("arq job payload is not a JSON object")
    return value
