"""Schemathesis against the app in-process, as the operator and as an organisation's owner: no
server error, no status code the document does not list, no schema-valid request refused.

Bounded (a few examples per operation) and derandomised, so a run is repeatable and short; the
full `st run <api>/openapi.json --checks all` finds the same classes of defect, with more cases."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from forgestack_db.database import Database
from forgestack_shared.settings import get_settings
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.fixtures_db import PgTestDatabase, make_org_keys

OPERATOR_KEY = "fuzz-operator-key"

# Operations where a schema-valid request may rightly be refused, and why; every other check runs.
_NOT_IN_SCHEMA = {
    # The email model's producer-side rules (a template's required variables, RFC 5322 mailboxes)
    # are not JSON Schema: a body valid by the schema may still be a 422, with the reason.
    "POST /api/v1/notifications/email",
    "POST /api/v1/queues/notification-email/jobs",
    "POST /api/v1/queues/notification-email/jobs:bulk",
    # PostgreSQL cannot store NUL (U+0000), so an audit event refuses it anywhere in its text,
    # nested metadata included: JSON Schema cannot say "no NUL at any depth".
    "POST /api/v1/audit-logs",
    "POST /api/v1/queues/audit-logs/jobs",
    "POST /api/v1/queues/audit-logs/jobs:bulk",
    # A webhook URL must pass the SSRF guard (http/https, every resolved address public): DNS
    # decides, not a schema.
    "POST /api/v1/webhooks/endpoints",
    "PATCH /api/v1/webhooks/endpoints/{endpoint_id}",
    # The cursor is opaque: only one the endpoint returned is valid (else 400 invalid cursor).
    "GET /api/v1/audit-logs",
}


@pytest.fixture(scope="module")
def fuzz(
    redis_url: str, pg_database: PgTestDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    """One app for the module: schemathesis starts its lifespan once and keeps it."""
    from forgestack_api.main import create_app

    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REDIS_URL", redis_url)
        env.setenv("QUEUE_PREFIX", f"fz{uuid.uuid4().hex[:10]}")
        env.setenv("FORGESTACK_DATA_DIR", str(data_dir))
        env.setenv("FORGESTACK_ADMIN_API_KEY", OPERATOR_KEY)
        env.setenv("DATABASE_URL", pg_database.app_url)
        env.setenv("LOG_LEVEL", "WARNING")
        get_settings.cache_clear()
        keys = {"operator": OPERATOR_KEY, "owner": asyncio.run(_owner_key(pg_database))}
        try:
            yield create_app(), keys
        finally:
            get_settings.cache_clear()


async def _owner_key(pg_database: PgTestDatabase) -> str:
    db = Database.from_url(pg_database.app_url)
    try:
        return (await make_org_keys(db)).owner
    finally:
        await db.dispose()


_BOUNDS = settings(
    max_examples=6,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _fuzz(app: FastAPI, key: str) -> list[str]:
    """Each operation gets its own bounded run; failures are collected, so one run lists all.

    Strategies under our own `@given` rather than schemathesis's pytest plugin, whose lazy
    fixture loader does not work with pytest 9."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {key}"}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        name = f"{operation.method.upper()} {operation.path}"
        excluded = [positive_data_acceptance] if name in _NOT_IN_SCHEMA else []

        @given(case=operation.as_strategy())
        @_BOUNDS
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, excluded_checks=excluded)  # noqa: B023 (run now)

        try:
            run()
        except Exception as exc:
            failures.append(f"{name}: {exc}")
    return failures


@pytest.mark.timeout(180)
def test_as_the_operator(fuzz: tuple[FastAPI, dict[str, str]]) -> None:
    failures = _fuzz(fuzz[0], fuzz[1]["operator"])
    assert not failures, "\n\n".join(failures)


@pytest.mark.timeout(180)
def test_as_an_organisations_owner(fuzz: tuple[FastAPI, dict[str, str]]) -> None:
    failures = _fuzz(fuzz[0], fuzz[1]["owner"])
    assert not failures, "\n\n".join(failures)
