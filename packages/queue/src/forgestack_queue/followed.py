"""Jobs and the job that must follow their add (the API's audit event of it): all exist or none.

On a single Redis all are written by one script call (add_followed.lua): the follower is added
only when at least one job is new, so an idempotent repeat of custom job ids adds no second
follower, and no failure can leave new jobs without their follower (a lost reply included: the
retry finds the jobs, and their follower with them). One call is also one round trip and one
script run instead of two.

A bulk add's follower counts the jobs it created, which only the script knows: the follower is
built with a placeholder number (`COUNT_SLOT`'s digits, random per call) where the count goes,
and the script writes the count in its place.

On a Redis Cluster each queue's keys live in its own slot, so no script can write both: the jobs
are added, then their follower, in two calls. There a failure between the two (Redis
unreachable, the process stopped) leaves jobs without their follower, and a retry of the same
custom ids finds the jobs and adds none: the gap this closes on a single Redis stays open on a
cluster."""

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .adds import AddResult, Jobs, Words, add_call, add_results, meta_json, new_id
from .options import JobOptions
from .scripts import scripts_for

if TYPE_CHECKING:
    from .producer import Queue

FOLLOWER_DATA = 5
"""Where add.lua's ARGV holds its first job's data (after the 3 heads, its id and name)."""


@dataclass(frozen=True, slots=True)
class FollowUp:
    """The job to add after new ones: built from the new job's local id (or the number of new
    jobs, for a bulk add), on the same client."""

    queue: "Queue"
    data: Any
    options: JobOptions | None = None


async def add_followed(
    queue: "Queue",
    data: Any,
    options: JobOptions | None,
    then: Callable[[str], FollowUp],
    *,
    name: str | None = None,
) -> tuple[AddResult, AddResult | None]:
    """The job's result, and its follower's (None when the job already existed). On a single
    Redis `then` is called before the job's add, so also for a job that turns out to exist (its
    follower is then not written)."""
    if queue.keys.tagged:
        result = await queue.add(data, options, name=name)
        if not result.created:
            return result, None
        follow = then(result.id)
        return result, await follow.queue.add(follow.data, follow.options)
    job_id = new_id(options)
    results, after = await _write(
        queue, [(data, options)], [job_id], then(job_id), "", name, meta_json()
    )
    return results[0], after


async def add_bulk_followed(
    queue: "Queue",
    jobs: Jobs,
    then: Callable[[int], FollowUp],
    *,
    name: str | None = None,
) -> tuple[list[AddResult], AddResult | None]:
    """The jobs' results, and their follower's (None when none was new). `then(created)` builds
    the follower from the number of new jobs; on a single Redis it is called before the add, with
    a placeholder number that the script replaces by the count, so the number must go into the
    follower's data as given (no arithmetic on it)."""
    if not jobs:
        return [], None
    if queue.keys.tagged:
        results = await queue.add_bulk(jobs, name=name)
        created = sum(result.created for result in results)
        if not created:
            return results, None
        follow = then(created)
        return results, await follow.queue.add(follow.data, follow.options)
    ids = [new_id(options) for _, options in jobs]
    meta = meta_json()
    for _ in range(SLOT_TRIES):
        slot = _count_slot()
        follow = then(slot)
        follower = add_call(follow.queue, [(follow.data, follow.options)], meta=meta)
        found = _occurrences(follower[1][FOLLOWER_DATA], str(slot))
        if found == 0:
            raise ValueError("the follower's data must hold the number given to `then` as is")
        if found == 1:
            return await _write(queue, jobs, ids, follow, str(slot), name, meta, follower)
    raise ValueError("the follower's data holds the count's placeholder more than once")


SLOT_TRIES = 5
"""Fresh placeholders tried when the data happens to hold one's digits elsewhere too."""


def _count_slot() -> int:
    """A placeholder no follower's data holds by chance: 18 random digits."""
    return 10**17 + secrets.randbelow(9 * 10**17)


def _occurrences(data: str | bytes | int, slot: str) -> int:
    text = data.decode() if isinstance(data, bytes) else str(data)
    return text.count(slot)


async def _write(
    queue: "Queue",
    jobs: Jobs,
    ids: Sequence[str],
    follow: FollowUp,
    slot: str,
    name: str | None,
    meta: str,
    follower_call: tuple[list[str], Words] | None = None,
) -> tuple[list[AddResult], AddResult | None]:
    """One add_followed.lua call; `slot`: the count's placeholder in the follower's data ('' for
    none), `follower_call`: the follower's add call when the caller built it already."""
    if follow.queue.redis is not queue.redis:
        raise ValueError("jobs and their follower are added on one client")
    keys, args = add_call(queue, jobs, name=name, ids=ids, meta=meta)
    follower_keys, follower_args = follower_call or add_call(
        follow.queue, [(follow.data, follow.options)], meta=meta
    )
    job_rows, follower_rows = await scripts_for(queue.redis).add_followed(
        keys=[*keys, *follower_keys], args=[len(keys), len(args), slot, *args, *follower_args]
    )
    if job_rows is None:
        # The follower's id is another queue's: nothing was written, and this raises its clash.
        add_results(follow.queue, follower_rows)
        raise AssertionError(f"add_followed.lua wrote nothing but reported {follower_rows!r}")
    results = add_results(queue, job_rows)
    if follower_rows is None:
        return results, None
    (after,) = add_results(follow.queue, follower_rows)
    return results, after
