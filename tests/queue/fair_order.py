"""Asserts the fair order's state (_prelude.lua fair_score) agrees with the queue's wait set."""

from collections import defaultdict

from forgestack_queue.keys import QueueKeys
from forgestack_queue.owners import owner_of
from redis.asyncio import Redis

TAG_SPAN = 2**43
"""SEQ_SPAN in _prelude.lua: a wait score is priority x TAG_SPAN + tag."""
PARK_SHIFT = 1024 * TAG_SPAN
"""A parked job (its owner at a per-owner limit) waits at its score minus this."""


async def assert_fair_order(
    redis: Redis,
    keys: QueueKeys,
    *,
    given_back: bool = False,
    released: frozenset[str] = frozenset(),
) -> None:
    """Every waiting job sits at its own priority, at or past that priority's clock (only a job
    handed back may run ahead of the jobs whose turn came after its own), with a tag no other job
    of its owner and priority shares; the unowned jobs' tags are at or below their recorded last
    tag. `given_back`: per-owner limits were in force, and a parked job given back keeps its old
    tag, behind the clock. `released`: jobs claimed and released unspent, which go back to the
    place they were claimed from (released_score), behind the clock."""
    fair = {k.decode(): int(v) for k, v in (await redis.hgetall(keys.fair)).items()}
    assert all(f.split(":")[0] in ("clock", "last") for f in fair), fair
    tags: dict[tuple[str | None, int], list[int]] = defaultdict(list)
    for member, score in await redis.zrange(keys.wait, 0, -1, withscores=True):
        job_id = member.decode()
        parked = score < 0
        priority, tag = divmod(int(score) + (PARK_SHIFT if parked else 0), TAG_SPAN)
        stored = await redis.hget(keys.job(job_id), "priority")
        assert priority == int(stored or 0), f"{job_id} waits at priority {priority}, not {stored}"
        if not (parked or given_back or job_id in released):
            clock = fair.get(f"clock:{priority}", 0)
            assert tag >= clock, f"{job_id} is behind its priority's clock"
        owner = owner_of(job_id)
        if owner is None:
            assert tag <= fair.get(f"last:{priority}", 0), f"{job_id} is past the last unowned tag"
        tags[owner, priority].append(tag)
    for (owner, priority), seen in tags.items():
        assert len(seen) == len(set(seen)), f"{owner} shares a tag at priority {priority}"
