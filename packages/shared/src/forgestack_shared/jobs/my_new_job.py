"""The seed's example job: exercises success, failure, permanent failure and slow work."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class MyNewJobData(BaseModel):
    model_config = ConfigDict(defer_build=True)

    user_id: str = Field(min_length=1, max_length=200)
    action: str = Field(
        min_length=1,
        max_length=100,
        description="`fail` raises (retried), `fail-permanently` is unrecoverable, "
        "`sleep` waits payload.seconds (reporting progress each second), `fail-once` fails its "
        "first attempt; anything else succeeds.",
    )
    payload: dict[str, Any] = Field(default_factory=dict)


class MyNewJobResult(BaseModel):
    model_config = ConfigDict(defer_build=True)

    success: bool
    processed_at: datetime
