"""The worker's cron jobs, run by two workers at once on a one-second schedule: every tick runs
once, and each job does its work (retention sweep, queue-health history, idle API keys)."""

import asyncio
import dataclasses
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from arq.cron import CronJob, cron
from forgestack_db.api_keys import issue_api_key
from forgestack_db.database import Database
from forgestack_db.models import ApiKey, ApiKeyRole
from forgestack_db.types import utcnow
from forgestack_queue.cron import CRON_QUEUE
from forgestack_queue.keys import job_key_prefix
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.queue_stats import history, record_snapshot
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, run_burst_worker, running
from forgestack_shared.settings import Settings
from forgestack_worker.cron import CRON_JOBS
from forgestack_worker.registry import HANDLERS
from forgestack_worker.resources import RESOURCES_KEY, WorkerResources
from forgestack_worker.services.email_sender import EmailSender, SmtpConfig
from forgestack_worker.services.webhook_client import WebhookClient
from redis.asyncio import Redis
from sqlmodel import select

from tests.db.helpers import make_org


def every_second(job: CronJob) -> CronJob:
    return dataclasses.replace(job, second=set(range(60)), minute=None, hour=None, next_run=None)


async def _old_failure_by_lease_expiry(redis: Redis, prefix: str, redis_url: str) -> str:
    """A my-new-job job whose worker died on its last attempt, failed eight days ago."""
    queue = Queue(redis, "my-new-job", prefix=prefix)
    added = await queue.add({"user_id": "u", "action": "ok"}, JobOptions(attempts=1))
    k = queue.keys
    await scripts_for(redis).claim(
        keys=list(k.claim_keys),
        args=[job_key_prefix(prefix), 1, 50, "dead", 0, "my-new-job"],
    )
    await asyncio.sleep(0.1)
    await run_burst_worker(redis_url, HANDLERS, prefix=prefix)
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.FAILED
    seconds, _ = await redis.time()
    await redis.zadd(k.failed, {added.id: (seconds - 8 * 24 * 3600) * 1000})
    return added.id


async def _key_used_days_ago(db: Database, org: uuid.UUID, days: int) -> uuid.UUID:
    async with db.service_context("test: key") as session:
        issued = await issue_api_key(session, org, ApiKeyRole.MEMBER, f"used {days} days ago")
        issued.record.last_used_at = utcnow() - timedelta(days=days)
        session.add(issued.record)
    return issued.record.id


async def test_two_workers_run_each_cron_job_once_per_tick_and_it_does_its_work(
    settings: Settings, redis: Redis, redis_url: str, queue_prefix: str, app_db: Database
) -> None:
    org = await make_org(app_db)
    idle = await _key_used_days_ago(app_db, org, settings.api_key_idle_revoke_days + 1)
    recent = await _key_used_days_ago(app_db, org, 1)
    old_failure = await _old_failure_by_lease_expiry(redis, queue_prefix, redis_url)

    async def on_startup(ctx: dict[str, Any]) -> None:
        sender = EmailSender(SmtpConfig.from_settings(settings))
        ctx[RESOURCES_KEY] = WorkerResources(
            settings=settings,
            email_sender=sender,
            db=app_db,
            webhook_client=WebhookClient(settings.webhook_timeout_s),
        )

    workers = [
        make_worker(
            redis_url,
            [],
            prefix=queue_prefix,
            burst=False,
            cron_jobs=[every_second(job) for job in CRON_JOBS],
            on_startup=on_startup,
        )
        for _ in range(2)
    ]
    async with running(*workers):
        await asyncio.sleep(3.5)

    cron_queue = Queue(redis, CRON_QUEUE, prefix=queue_prefix)
    done = (await cron_queue.get_jobs(JobState.COMPLETED, limit=1000)).jobs
    failed = (await cron_queue.get_jobs(JobState.FAILED)).jobs
    assert failed == [], [j.failed_reason for j in failed]
    runs = Counter(j.name for j in done)
    assert set(runs) == {job.name for job in CRON_JOBS}
    assert min(runs.values()) >= 2, runs
    assert len({j.id for j in done}) == len(done)
    # Once per tick: one history entry per queue-health tick, not one per worker.
    snapshots = await history(redis, prefix=queue_prefix, limit=100)
    assert len(snapshots) == runs["cron:record_queue_health"]
    assert snapshots[0].queues["my-new-job"][JobState.FAILED] == 0

    assert await Queue(redis, "my-new-job", prefix=queue_prefix).get_job(old_failure) is None
    async with app_db.service_context("test: read keys") as session:
        keys = {k.id: k for k in (await session.exec(select(ApiKey))).all()}
    assert keys[idle].revoked_at is not None
    assert keys[recent].revoked_at is None


async def test_queue_health_history_is_bounded_and_counts_every_queue(
    redis: Redis, queue_prefix: str
) -> None:
    await Queue(redis, "a", prefix=queue_prefix).add({"n": 1})
    await Queue(redis, "b", prefix=queue_prefix).add({"n": 1}, JobOptions(delay=60_000))
    for _ in range(3):
        latest = await record_snapshot(redis, prefix=queue_prefix, keep=2)
    assert latest.queues["a"][JobState.WAITING] == 1
    assert latest.queues["b"][JobState.DELAYED] == 1
    assert len(await history(redis, prefix=queue_prefix, limit=10)) == 2


async def broken_tick(ctx: dict[str, Any]) -> None:
    raise RuntimeError("housekeeping broke")


async def test_a_failing_tick_lands_in_the_failed_store(
    redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    worker = make_worker(
        redis_url,
        [],
        prefix=queue_prefix,
        burst=False,
        cron_jobs=[cron(broken_tick, second=set(range(60)))],
    )
    async with running(worker):
        await asyncio.sleep(1.5)
    failed = (await Queue(redis, CRON_QUEUE, prefix=queue_prefix).get_jobs(JobState.FAILED)).jobs
    assert failed and all(j.name == "cron:broken_tick" for j in failed)
    assert failed[0].failed_reason == "RuntimeError: housekeeping broke"
