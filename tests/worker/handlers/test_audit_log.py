"""The audit-log handler against real PostgreSQL (as the application login) and SQLite: one row per
event however often the job runs, permanent rejection for an unknown organisation, and - through
the real queue and worker - a database outage that ends with exactly one row."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from forgestack_db.audit import AuditQuery, list_audit_events
from forgestack_db.database import Database
from forgestack_db.migrate import upgrade_async
from forgestack_db.models import AuditLog
from forgestack_queue.errors import UnrecoverableError
from forgestack_queue.options import Backoff, JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_job, run_burst_worker
from forgestack_shared.catalog import AUDIT_LOGS
from forgestack_shared.jobs.audit_log import AuditLogData
from forgestack_shared.settings import Settings, get_settings
from forgestack_worker.handlers.audit_log import handle_audit_log
from forgestack_worker.registry import HANDLERS
from forgestack_worker.resources import RESOURCES_KEY, close_resources, open_resources
from forgestack_worker.settings import on_shutdown, on_startup
from redis.asyncio import Redis
from sqlalchemy.engine import make_url
from sqlmodel import select

from tests.db.helpers import make_org
from tests.db.tcp_proxy import TcpProxy
from tests.fixtures_db import PgTestDatabase


def _event(org_id: uuid.UUID | None, **overrides: object) -> AuditLogData:
    fields: dict[str, object] = {
        "org_id": org_id,
        "actor_id": "user-42",
        "actor_type": "user",
        "actor_name": "Jane Doe",
        "actor_email": "jane@acme.example.com",
        "action": "project.renamed",
        "resource_type": "project",
        "resource_id": "p-7",
        "resource_name": "Apollo",
        "changes": {"before": {"name": "Apolo"}, "after": {"name": "Apollo"}},
        "metadata": {"request_id": "r-1"},
        "ip_address": "2001:db8::1",
        "user_agent": "pytest",
    }
    return AuditLogData.model_validate(fields | overrides)


def _use_database(monkeypatch: pytest.MonkeyPatch, url: str) -> Settings:
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
async def worker_ctx(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, pg_database: PgTestDatabase
) -> AsyncIterator[dict[str, object]]:
    """The worker's real resources (opened as on_startup does) on the application login."""
    res = await open_resources(_use_database(monkeypatch, pg_database.app_url))
    try:
        yield {RESOURCES_KEY: res}
    finally:
        await close_resources(res)


async def _rows(db: Database, event_id: uuid.UUID) -> list[AuditLog]:
    async with db.service_context("test: read back") as session:
        return list(
            (await session.exec(select(AuditLog).where(AuditLog.event_id == event_id))).all()
        )


async def test_an_event_becomes_one_row_with_every_field(
    worker_ctx: dict[str, object], app_db: Database
) -> None:
    org = await make_org(app_db)
    data = _event(org)
    result = await handle_audit_log(make_job(data, queue=AUDIT_LOGS.name.value, ctx=worker_ctx))
    assert result.stored and result.event_id == data.event_id
    (row,) = await _rows(app_db, data.event_id)
    assert (row.org_id, row.actor_type, row.actor_email, row.ip_address) == (
        org,
        "user",
        "jane@acme.example.com",
        "2001:db8::1",
    )
    assert row.changes == {"before": {"name": "Apolo"}, "after": {"name": "Apollo"}}
    assert row.event_metadata == {"request_id": "r-1"}
    assert row.occurred_at == data.occurred_at
    assert row.recorded_at is not None and row.recorded_at >= row.occurred_at
    async with app_db.tenant_context(org) as session:
        page = await list_audit_events(session, org, AuditQuery())
    assert [e.event_id for e in page.events] == [data.event_id]


async def test_a_duplicated_or_retried_job_stores_one_row(
    worker_ctx: dict[str, object], app_db: Database
) -> None:
    org = await make_org(app_db)
    data = _event(org)
    first = await handle_audit_log(make_job(data, job_id="a", ctx=worker_ctx))
    retried = await handle_audit_log(make_job(data, job_id="a", attempt=2, ctx=worker_ctx))
    duplicate = await handle_audit_log(make_job(data, job_id="b", ctx=worker_ctx))
    assert (first.stored, retried.stored, duplicate.stored) == (True, False, False)
    assert len(await _rows(app_db, data.event_id)) == 1


async def test_concurrent_duplicates_store_one_row(
    worker_ctx: dict[str, object], app_db: Database
) -> None:
    org = await make_org(app_db)
    data = _event(org)
    results = await asyncio.gather(
        *(handle_audit_log(make_job(data, job_id=str(i), ctx=worker_ctx)) for i in range(5))
    )
    assert sorted(r.stored for r in results) == [False] * 4 + [True]
    assert len(await _rows(app_db, data.event_id)) == 1


async def test_an_event_id_taken_by_another_organisation_fails_visibly(
    worker_ctx: dict[str, object], app_db: Database
) -> None:
    first_org, second_org = await make_org(app_db), await make_org(app_db)
    first = _event(first_org)
    await handle_audit_log(make_job(first, ctx=worker_ctx))
    clash = _event(second_org, event_id=first.event_id)
    with pytest.raises(UnrecoverableError, match="another organisation"):
        await handle_audit_log(make_job(clash, job_id="b", ctx=worker_ctx))
    (row,) = await _rows(app_db, first.event_id)
    assert row.org_id == first_org


async def test_an_unknown_organisation_fails_permanently(worker_ctx: dict[str, object]) -> None:
    data = _event(uuid.uuid4())
    with pytest.raises(UnrecoverableError, match="rejected by the database"):
        await handle_audit_log(make_job(data, ctx=worker_ctx))


async def test_platform_events_have_no_organisation(
    worker_ctx: dict[str, object], app_db: Database
) -> None:
    data = _event(None, actor_type="api_key", actor_id="operator")
    assert (await handle_audit_log(make_job(data, ctx=worker_ctx))).stored
    (row,) = await _rows(app_db, data.event_id)
    assert row.org_id is None


async def test_the_sqlite_dev_path(settings: Settings) -> None:
    """No DATABASE_URL: the worker uses SQLite under the data dir, migrated as `forgestack dev` does."""
    await upgrade_async(settings.effective_database_url)
    res = await open_resources(settings)
    try:
        org = await make_org(res.db)
        data = _event(org)
        ctx = {RESOURCES_KEY: res}
        assert (await handle_audit_log(make_job(data, ctx=ctx))).stored
        assert not (await handle_audit_log(make_job(data, attempt=2, ctx=ctx))).stored
        assert len(await _rows(res.db, data.event_id)) == 1
    finally:
        await close_resources(res)


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


async def test_a_database_outage_is_retried_and_ends_with_exactly_one_row(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    pg_database: PgTestDatabase,
    app_db: Database,
    proxy: TcpProxy,
    redis: Redis,
    redis_url: str,
    queue_prefix: str,
) -> None:
    org = await make_org(app_db)
    through_proxy = make_url(pg_database.app_url).set(port=proxy.port)
    _use_database(monkeypatch, through_proxy.render_as_string(hide_password=False))
    queue = Queue(redis, AUDIT_LOGS.name.value, prefix=queue_prefix)
    data = _event(org)
    # The same event twice (a producer retrying its enqueue), due in 1 s; fast retries for the test.
    options = JobOptions(attempts=30, delay=1000, backoff=Backoff(type="fixed", delay=250))
    jobs = [await queue.add(data.model_dump(mode="json"), options) for _ in range(2)]

    async def outage() -> None:
        await asyncio.sleep(0.5)  # the worker has started and its startup check went through
        await proxy.stop()
        await asyncio.sleep(3.0)  # jobs fall due at 1 s and fail until the database is back
        await proxy.start()

    outage_task = asyncio.create_task(outage())
    await run_burst_worker(
        redis_url, HANDLERS, prefix=queue_prefix, on_startup=on_startup, on_shutdown=on_shutdown
    )
    await outage_task

    records = [await queue.get_job(job.id) for job in jobs]
    assert all(r is not None and r.state is JobState.COMPLETED for r in records), records
    attempts = [r.attempts_made for r in records if r is not None]
    assert min(attempts) >= 3, f"expected failed attempts during the outage, got {attempts}"
    assert sorted(r.result["stored"] for r in records if r and r.result) == [False, True]
    assert len(await _rows(app_db, data.event_id)) == 1
