"""Writes many finished jobs straight into Redis, as a long-running queue would have them."""

import time

from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState


async def seed_finished(queue: Queue, state: JobState, n: int, *, owner: str | None = None) -> None:
    """`n` finished jobs, oldest first, all finished within the last few seconds."""
    now_ms = time.time() * 1000
    async with queue.redis.pipeline(transaction=False) as pipe:
        for i in range(n):
            job_id = f"seed-{i}" if owner is None else f"{owner}~seed-{i}"
            score = now_ms - 5000 + i * 0.001
            pipe.hset(
                queue.keys.job(job_id),
                mapping={
                    "id": job_id,
                    "queue": queue.name,
                    "name": queue.name,
                    "state": state.value,
                    "data": "{}",
                    "opts": "{}",
                    "finished_at": int(score),
                    "created_at": int(score),
                },
            )
            pipe.zadd(queue.keys.state_set(state), {job_id: score})
            if owner is not None:
                pipe.zadd(queue.keys.owner_set(owner, state), {job_id: score})
        await pipe.execute()
