"""A claim whose reply was lost spends no attempt, and claim tokens never recur."""

import asyncio
import json

from forgestack_queue.claims import Claimer
from forgestack_queue.keys import job_key_prefix, queue_key_prefix
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, running
from redis.asyncio import Redis

from tests.queue.owner_index import assert_indexes_agree
from tests.queue.probe import PROBE, Probe, ProbeData
from tests.queue.reply_proxy import reply_dropping_proxy


async def _wait_until_final(queue: Queue, job_id: str, seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        job = await queue.get_job(job_id)
        if job is not None and job.state in (JobState.COMPLETED, JobState.FAILED):
            return
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.05)


async def test_a_claim_whose_reply_is_lost_does_not_spend_the_attempt(
    queue: Queue, probe: Probe, redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="x"), JobOptions(attempts=1))
    # Loaded first, so the worker's first EVALSHA is the claim itself and not a NOSCRIPT round.
    claim = scripts_for(redis).claim
    await redis.script_load(claim.script)
    async with reply_dropping_proxy(redis_url) as (proxy, url):
        proxy.drop_replies_to(claim.sha.encode(), times=1)
        worker = make_worker(url, [probe.handler()], prefix=queue_prefix, burst=False, lease_ms=500)
        async with running(worker):
            await _wait_until_final(queue, added.id, 5.0)
    assert proxy.dropped == 1
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.COMPLETED, job.failed_reason
    assert job.attempts_made == 1
    assert [(tag, attempt) for tag, attempt, _ in probe.runs] == [("x", 1)]


async def test_a_late_outcome_of_a_first_run_cannot_pass_the_fence_after_an_operator_retry(
    queue: Queue, queue_prefix: str
) -> None:
    """retry.lua resets the attempt count, so a token built from the worker and that count alone
    (`<worker>:1`) would recur, and the first run's late outcome would pass as the second's."""
    added = await queue.add(ProbeData(tag="x"), JobOptions(attempts=1))
    scripts = scripts_for(queue.redis)
    claimer = Claimer(scripts, queue_prefix, [PROBE], worker_id="w1", lease_ms=50)
    (first,), _, _ = await claimer.claim(1)
    await asyncio.sleep(0.1)
    await claimer.claim(1)  # recovers the lapsed lease: the only attempt is lost, the job fails
    failed = await queue.get_job(added.id)
    assert failed is not None and failed.state is JobState.FAILED
    await queue.retry(added.id)
    (second,), _, _ = await claimer.claim(1)
    assert second.attempt == first.attempt == 1
    assert second.token != first.token
    row = [PROBE, added.id, first.token, "completed", "{}", "", -1, -1, 0]
    late = await scripts.finish(
        args=[job_key_prefix(queue_prefix), queue_key_prefix(queue_prefix), json.dumps([row])]
    )
    assert late == [0]
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.ACTIVE and job.attempts_made == 0


async def test_undoing_a_lost_claim_keeps_the_owner_index_in_step(
    redis: Redis, queue: Queue, queue_prefix: str
) -> None:
    owned = Queue(redis, PROBE, prefix=queue_prefix, owner="org-a")
    added = await owned.add(ProbeData(tag="x"), JobOptions(attempts=1))
    scripts = scripts_for(redis)
    claimer = Claimer(scripts, queue_prefix, [PROBE], worker_id="w1", lease_ms=60_000)
    (claimed,), _, _ = await claimer.claim(1)
    await assert_indexes_agree(redis, queue.keys)
    token = claimed.token.rsplit(":", 2)[0]
    released = await scripts.release_claim(
        keys=list(queue.keys.release_keys),
        args=[job_key_prefix(queue_prefix), token],
    )
    assert released == 1
    counts = await assert_indexes_agree(redis, queue.keys)
    assert counts["org-a"].get(JobState.WAITING) == 1
    assert counts["org-a"].get(JobState.ACTIVE, 0) == 0
    job = await owned.get_job(added.id)
    assert job is not None and job.state is JobState.WAITING and job.attempts_made == 0
