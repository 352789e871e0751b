"""A job and the job that must follow its add (the API's audit event of it): both exist or neither.

On a single Redis both are written by one script call (add_followed.lua): the follower is added
only when the job is new, so an idempotent repeat of a custom job id adds no second follower, and
no failure can leave a new job without its follower (a lost reply included: the retry finds the
job, and its follower with it). One call is also one round trip and one script run instead of two.

On a Redis Cluster each queue's keys live in its own slot, so no script can write both: the job is
added, then its follower, in two calls. There a failure between the two (Redis unreachable, the
process stopped) leaves a job without its follower, and a retry of the same custom id finds the
job and adds none: the gap this closes on a single Redis stays open on a cluster."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .adds import AddResult, add_call, add_results, meta_json, new_id
from .options import JobOptions
from .scripts import scripts_for

if TYPE_CHECKING:
    from .producer import Queue


@dataclass(frozen=True, slots=True)
class FollowUp:
    """The job to add after a new one: built from the new job's local id, on the same client."""

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
    follow = then(job_id)
    if follow.queue.redis is not queue.redis:
        raise ValueError("a job and its follower are added on one client")
    meta = meta_json()
    keys, args = add_call(queue, [(data, options)], name=name, ids=[job_id], meta=meta)
    follower = [(follow.data, follow.options)]
    follower_keys, follower_args = add_call(follow.queue, follower, meta=meta)
    job_rows, follower_rows = await scripts_for(queue.redis).add_followed(
        keys=[*keys, *follower_keys], args=[len(keys), len(args), *args, *follower_args]
    )
    if job_rows is None:
        # The follower's id is another queue's: nothing was written, and this raises its clash.
        add_results(follow.queue, follower_rows)
        raise AssertionError(f"add_followed.lua wrote nothing but reported {follower_rows!r}")
    (result,) = add_results(queue, job_rows)
    if follower_rows is None:
        return result, None
    (after,) = add_results(follow.queue, follower_rows)
    return result, after
