"""Job states; each is one Redis structure per queue, so counts and listings agree at any moment."""

from enum import StrEnum


class JobState(StrEnum):
    WAITING = "waiting"
    DELAYED = "delayed"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
