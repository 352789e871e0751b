"""Reading the audit log: newest first, filtered by action, resource type, actor and time range,
paged by an opaque cursor that never skips or repeats a row, on PostgreSQL and SQLite."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from forgestack_db.audit import AuditQuery, InvalidCursorError, encode_cursor, list_audit_events
from forgestack_db.database import Database
from forgestack_db.models import AuditLog

from tests.db.helpers import add_audit, make_org

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request: pytest.FixtureRequest) -> Database:
    found = request.getfixturevalue("app_db" if request.param == "postgresql" else "sqlite_db")
    assert isinstance(found, Database)
    return found


async def _seed(db: Database) -> uuid.UUID:
    """Ten events a minute apart; two share a timestamp to exercise the cursor's tie-break."""
    org = await make_org(db)
    for i in range(10):
        await add_audit(
            db,
            org,
            action="job.retried" if i % 2 else "job.removed",
            resource_type="job" if i < 6 else "api_key",
            actor_id=f"actor-{i % 3}",
            occurred_at=T0 + timedelta(minutes=min(i, 8)),
        )
    return org


async def _list(
    db: Database, org: uuid.UUID | None, query: AuditQuery
) -> tuple[list[AuditLog], str | None]:
    if org is None:
        async with db.service_context("test: platform events") as session:
            page = await list_audit_events(session, None, query)
    else:
        async with db.tenant_context(org) as session:
            page = await list_audit_events(session, org, query)
    return page.events, page.next_cursor


async def test_pages_cover_every_event_once_newest_first(db: Database) -> None:
    org = await _seed(db)
    seen: list[AuditLog] = []
    cursor = None
    pages = 0
    while True:
        events, cursor = await _list(db, org, AuditQuery(limit=3, cursor=cursor))
        seen += events
        pages += 1
        if cursor is None:
            break
    assert pages == 4
    assert len({e.event_id for e in seen}) == 10
    keys = [(e.occurred_at, e.id) for e in seen]
    assert keys == sorted(keys, reverse=True)


async def test_filters_combine(db: Database) -> None:
    org = await _seed(db)
    events, _ = await _list(db, org, AuditQuery(action="job.retried", resource_type="job"))
    assert sorted(e.occurred_at for e in events) == [T0 + timedelta(minutes=m) for m in (1, 3, 5)]
    events, _ = await _list(db, org, AuditQuery(actor_id="actor-0"))
    assert {e.actor_id for e in events} == {"actor-0"} and len(events) == 4


async def test_the_time_range_is_inclusive_then_exclusive(db: Database) -> None:
    org = await _seed(db)
    events, _ = await _list(
        db,
        org,
        AuditQuery(occurred_from=T0 + timedelta(minutes=2), occurred_to=T0 + timedelta(minutes=4)),
    )
    assert sorted(e.occurred_at for e in events) == [
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=3),
    ]
    assert all(e.occurred_at.tzinfo is not None for e in events)


async def test_other_orgs_and_platform_events_stay_apart(db: Database) -> None:
    org_a, org_b = await _seed(db), await make_org(db)
    await add_audit(db, org_b, action="only.b")
    platform = await add_audit(db, None, actor_type="api_key", action="job.retried")
    a_events, _ = await _list(db, org_a, AuditQuery(limit=200))
    assert len(a_events) == 10 and {e.org_id for e in a_events} == {org_a}
    platform_events, _ = await _list(db, None, AuditQuery(limit=200))
    assert platform in {e.event_id for e in platform_events}
    assert {e.org_id for e in platform_events} == {None}


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64!",
        "eyJ0IjogMX0",
        encode_cursor(
            AuditLog(
                event_id=uuid.uuid4(),
                org_id=None,
                actor_id="a",
                actor_type="user",
                action="a",
                resource_type="r",
                occurred_at=datetime(2025, 1, 1),
                id=1,
            )
        ),
    ],
)
async def test_a_forged_cursor_is_rejected(db: Database, cursor: str) -> None:
    org = await make_org(db)
    with pytest.raises(InvalidCursorError):
        await _list(db, org, AuditQuery(cursor=cursor))
