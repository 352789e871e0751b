"""Asserts every owner index mirrors its queue's state sets exactly (members and scores)."""

from forgestack_queue.keys import QueueKeys
from forgestack_queue.owners import owner_of
from forgestack_queue.states import JobState
from redis.asyncio import Redis


async def assert_indexes_agree(redis: Redis, keys: QueueKeys) -> dict[str, dict[JobState, int]]:
    """Returns each owner's counts per state, after checking them against the queue's sets."""
    stray = [k.decode() async for k in redis.scan_iter(match=f"{keys.base}o:*")]
    seen: dict[str, dict[JobState, int]] = {}
    for state in JobState:
        members = await redis.zrange(keys.state_set(state), 0, -1, withscores=True)
        expected: dict[str, list[tuple[bytes, float]]] = {}
        for member, score in members:
            owner = owner_of(member.decode())
            if owner is not None:
                expected.setdefault(owner, []).append((member, score))
        for owner, rows in expected.items():
            key = keys.owner_set(owner, state)
            got = await redis.zrange(key, 0, -1, withscores=True)
            assert sorted(got) == sorted(rows), f"{key} disagrees with {keys.state_set(state)}"
            seen.setdefault(owner, {})[state] = len(rows)
            if key in stray:
                stray.remove(key)
    # An index with members whose jobs left the queue's sets would count jobs that are gone.
    for key in stray:
        assert await redis.zcard(key) == 0, f"{key} holds jobs absent from the queue's sets"
    return seen
