"""A job released unspent (its worker stopped or paused, a prefetched job's shelf life passed, the
remote side rate-limited it, or the claim's reply was lost) goes back to the place in line it was
claimed from, not behind the jobs added since: FIFO and the owners' turns hold through releases.
A retry, which spends an attempt, still takes a new turn."""

import dataclasses
import json
from collections.abc import Callable

from forgestack_queue.claims import Claimer
from forgestack_queue.keys import job_key_prefix, queue_key_prefix
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.runner import ClaimedJob
from forgestack_queue.scripts import scripts_for
from redis.asyncio import Redis

from tests.queue.fair_order import assert_fair_order
from tests.queue.owner_index import assert_indexes_agree
from tests.queue.probe import PROBE, ProbeData


async def _add(queue: Queue, *tags: str) -> list[str]:
    return [(await queue.add(ProbeData(tag=t), JobOptions(attempts=3))).id for t in tags]


def _claimer(queue_prefix: str, redis: Redis, worker: str = "w1") -> Claimer:
    return Claimer(scripts_for(redis), queue_prefix, [PROBE], worker_id=worker, lease_ms=60_000)


async def _end(redis: Redis, queue_prefix: str, jobs: list[ClaimedJob], outcome: str) -> None:
    rows = [[PROBE, job.id, job.token, outcome, "", "", -1, -1, 0] for job in jobs]
    args = [job_key_prefix(queue_prefix), queue_key_prefix(queue_prefix), json.dumps(rows)]
    assert await scripts_for(redis).finish(args=args) == [1] * len(jobs)


async def test_released_jobs_run_before_the_jobs_behind_them(
    queue: Queue, redis: Redis, queue_prefix: str
) -> None:
    ids = await _add(queue, "1", "2", "3", "4")
    claimer = _claimer(queue_prefix, redis)
    first, _, _ = await claimer.claim(2)
    assert [job.id for job in first] == ids[:2]
    ids += await _add(queue, "5")
    await _end(redis, queue_prefix, first, "release")
    again, _, _ = await claimer.claim(5)
    assert [job.id for job in again] == ids
    assert [job.attempt for job in again] == [1] * 5  # the release spent nothing


async def test_a_rate_limited_attempt_keeps_its_place(
    queue: Queue, redis: Redis, queue_prefix: str
) -> None:
    ids = await _add(queue, "1", "2", "3")
    claimer = _claimer(queue_prefix, redis)
    first, _, _ = await claimer.claim(1)
    await _end(redis, queue_prefix, first, "limited")  # holds the queue for 0 ms
    again, _, _ = await claimer.claim(3)
    assert [job.id for job in again] == ids


async def test_a_retry_takes_a_new_turn(queue: Queue, redis: Redis, queue_prefix: str) -> None:
    ids = await _add(queue, "1", "2", "3")
    claimer = _claimer(queue_prefix, redis)
    first, _, _ = await claimer.claim(1)
    await _end(redis, queue_prefix, first, "retry")  # no delay: straight back to waiting
    again, _, _ = await claimer.claim(3)
    assert [job.id for job in again] == [*ids[1:], ids[0]]


async def test_owners_keep_their_turns_through_a_release(
    queue: Queue, redis: Redis, queue_prefix: str
) -> None:
    a, b = (Queue(redis, PROBE, prefix=queue_prefix, owner=o) for o in ("org-a", "org-b"))
    a_ids = [f"org-a~{i}" for i in await _add(a, "a1", "a2", "a3")]
    b_ids = [f"org-b~{i}" for i in await _add(b, "b1", "b2", "b3")]
    claimer = _claimer(queue_prefix, redis)
    first, _, _ = await claimer.claim(2)
    assert [job.id for job in first] == [a_ids[0], b_ids[0]]
    await _end(redis, queue_prefix, first, "release")
    await assert_fair_order(redis, queue.keys, released=frozenset(job.id for job in first))
    await assert_indexes_agree(redis, queue.keys)
    again, _, _ = await claimer.claim(6)
    assert [job.id for job in again] == [x for pair in zip(a_ids, b_ids, strict=True) for x in pair]


async def test_an_undone_claim_puts_its_jobs_back_in_their_places(
    queue: Queue, redis: Redis, queue_prefix: str
) -> None:
    """A claim whose reply was lost is undone by its call's token (release_claim.lua)."""
    ids = await _add(queue, "1", "2", "3", "4")
    lost, _, _ = await _claimer(queue_prefix, redis, "w-lost").claim(2)
    ids += await _add(queue, "5")
    released = await scripts_for(redis).release_claim(
        keys=list(queue.keys.release_keys),
        args=[job_key_prefix(queue_prefix), lost[0].token.rsplit(":", 2)[0]],
    )
    assert released == 2
    again, _, _ = await _claimer(queue_prefix, redis).claim(5)
    assert [job.id for job in again] == ids


async def test_an_attempt_claimed_before_tokens_carried_its_place_takes_a_new_turn(
    queue: Queue, redis: Redis, queue_prefix: str
) -> None:
    """A token in the earlier form (`<worker>:<attempt>`, no score): released as before."""
    ids = await _add(queue, "1", "2", "3")
    await _release_with_token(queue, redis, queue_prefix, lambda job: job.token.rsplit(":", 2)[0])
    again, _, _ = await _claimer(queue_prefix, redis).claim(3)
    assert [job.id for job in again] == [*ids[1:], ids[0]]


async def test_an_earlier_form_token_whose_call_part_is_all_digits_takes_a_new_turn(
    queue: Queue, redis: Redis, queue_prefix: str
) -> None:
    """The call part of a token is random hex, all digits about once in 280 claims: in the earlier
    form (`<worker>:<call>:<attempt>`) it must not read as the place the job was claimed from (a
    tag far past the clock would put the job, and its owner's later jobs, behind every other)."""
    ids = await _add(queue, "1", "2", "3")
    await _release_with_token(queue, redis, queue_prefix, lambda _: "w1:123456789012")
    ids += await _add(queue, "4")
    again, _, _ = await _claimer(queue_prefix, redis).claim(4)
    assert [job.id for job in again] == [*ids[1:3], ids[0], ids[3]]


async def _release_with_token(
    queue: Queue, redis: Redis, queue_prefix: str, earlier_call: Callable[[ClaimedJob], str]
) -> None:
    """Claims the first job, gives its attempt a token in the earlier form (`earlier_call(job)`,
    then `:<attempt>`, no place), releases it, and checks the fair order."""
    (first,), _, _ = await _claimer(queue_prefix, redis).claim(1)
    old = f"{earlier_call(first)}:{first.attempt}"
    await redis.hset(queue.keys.job(first.id), "token", old)  # type: ignore[misc]
    await _end(redis, queue_prefix, [dataclasses.replace(first, token=old)], "release")
    await assert_fair_order(redis, queue.keys)
