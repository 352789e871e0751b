"""Shared by the tests of calls stopped part-way: finish.lua's arguments for hand-made rows, and
where a job is found afterwards."""

import json

from forgestack_queue.events import EVENT_RESULT_MAX_BYTES
from forgestack_queue.keys import queue_key_prefix
from forgestack_queue.producer import Queue
from forgestack_queue.runner import ClaimedJob
from redis.asyncio import Redis

OTHER = "other-queue"


def completed_row(job: ClaimedJob, keep_age: object = -1) -> list[object]:
    """finish.lua's row for the attempt completing, kept (no count rule)."""
    return [job.queue, job.id, job.token, "completed", "null", "", -1, keep_age, 0, 0]


def finish_args(queue: Queue, rows: list[list[object]]) -> list[object]:
    return [
        queue.keys.job_prefix,
        queue_key_prefix(queue.prefix),
        json.dumps(rows),
        EVENT_RESULT_MAX_BYTES,
    ]


async def in_some_set(redis: Redis, queue: Queue, job_id: str) -> list[str]:
    """The queue's state sets that hold the job."""
    keys = queue.keys
    found = []
    for name, key in (
        ("wait", keys.wait),
        ("delayed", keys.delayed),
        ("active", keys.active),
        ("completed", keys.completed),
        ("failed", keys.failed),
    ):
        if await redis.zscore(key, job_id) is not None:
            found.append(name)
    return found
