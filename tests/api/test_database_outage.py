"""PostgreSQL taken away (a loopback proxy cut) under the running API: routes that need the
database answer 503 `{"detail", "code", "dependency": "database"}`, never 500; routes that need only
Redis keep working for keys verified before the outage (the queue absorbs it); then recovery."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from forgestack_api.main import create_app
from forgestack_db.database import Database
from forgestack_shared.settings import Settings, get_settings
from sqlalchemy.engine import make_url

from tests.api.test_api_keys import OPERATOR_KEY
from tests.db.tcp_proxy import TcpProxy
from tests.fixtures_db import PgTestDatabase, make_org_keys

EMAIL = {
    "to": "jane@example.com",
    "subject": "Hi",
    "template": "notification",
    "variables": {"message": "m"},
}
JOB = {"data": {"user_id": "u", "action": "greet"}}
EVENT = {"action": "project.renamed", "resource_type": "project"}
UNKNOWN_KEY = "fsk_00000000_" + "x" * 43


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


@pytest.fixture
async def proxied_app(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    pg_database: PgTestDatabase,
    proxy: TcpProxy,
) -> AsyncIterator[FastAPI]:
    url = make_url(pg_database.app_url).set(port=proxy.port)
    monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    app = create_app()
    async with app.router.lifespan_context(app):
        yield app


async def _call(app: FastAPI, key: str, method: str, url: str, body: Any = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        headers = {"Authorization": f"Bearer {key}"}
        return await client.request(method, url, json=body, headers=headers)


def _assert_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == "dependency_unavailable"
    assert body["dependency"] == "database"
    assert body["detail"]


async def test_database_down_is_503_for_database_routes_and_redis_routes_keep_working(
    proxied_app: FastAPI, app_db: Database, proxy: TcpProxy
) -> None:
    seen, unseen = await make_org_keys(app_db), await make_org_keys(app_db)
    app = proxied_app
    job = await _call(app, seen.owner, "POST", "/api/v1/queues/my-new-job/jobs", JOB)
    assert job.status_code == 202
    job_id = job.json()["id"]
    assert (await _call(app, seen.member, "GET", "/api/v1/queues")).status_code == 200

    await proxy.stop()

    # Keys nobody can check now: the database is the only judge of them.
    for key in (unseen.owner, UNKNOWN_KEY):
        _assert_503(await _call(app, key, "GET", "/api/v1/queues"))
        _assert_503(await _call(app, key, "POST", "/api/v1/audit-logs", EVENT))
    # Routes that read or write the database, whoever calls.
    for key, method, url, body in [
        (seen.owner, "GET", "/api/v1/audit-logs", None),
        (seen.owner, "GET", "/api/v1/api-keys", None),
        (seen.owner, "POST", "/api/v1/api-keys", {"name": "new"}),
        (seen.owner, "DELETE", f"/api/v1/api-keys/{seen.org_id}", None),
        (OPERATOR_KEY, "GET", "/api/v1/audit-logs", None),
    ]:
        _assert_503(await _call(app, key, method, url, body))
    # Routes that need only Redis, for keys verified before the outage and for the operator.
    for key, method, url, body, status in [
        (seen.owner, "POST", "/api/v1/queues/my-new-job/jobs", JOB, 202),
        (seen.owner, "POST", "/api/v1/notifications/email", EMAIL, 202),
        (seen.member, "POST", "/api/v1/audit-logs", EVENT, 202),
        (seen.owner, "GET", f"/api/v1/jobs/{job_id}", None, 200),
        (seen.owner, "DELETE", f"/api/v1/jobs/{job_id}", None, 204),
        (OPERATOR_KEY, "POST", "/api/v1/audit-logs", EVENT, 202),
    ]:
        response = await _call(app, key, method, url, body)
        assert response.status_code == status, (url, response.text)

    await proxy.start()

    for key, method, url in [
        (unseen.owner, "GET", "/api/v1/queues"),
        (UNKNOWN_KEY, "GET", "/api/v1/queues"),
        (seen.owner, "GET", "/api/v1/audit-logs"),
        (seen.owner, "GET", "/api/v1/api-keys"),
        (OPERATOR_KEY, "GET", "/api/v1/audit-logs"),
    ]:
        response = await _call(app, key, method, url)
        assert response.status_code == (401 if key == UNKNOWN_KEY else 200), response.text


async def test_with_no_grace_every_organisation_key_is_503_during_an_outage(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    pg_database: PgTestDatabase,
    proxy: TcpProxy,
    app_db: Database,
) -> None:
    monkeypatch.setenv("API_KEY_OUTAGE_GRACE_S", "0")
    url = make_url(pg_database.app_url).set(port=proxy.port)
    monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    keys = await make_org_keys(app_db)
    app = create_app()
    async with app.router.lifespan_context(app):
        assert (await _call(app, keys.owner, "GET", "/api/v1/queues")).status_code == 200
        await proxy.stop()
        _assert_503(await _call(app, keys.owner, "POST", "/api/v1/notifications/email", EMAIL))
        assert (await _call(app, OPERATOR_KEY, "GET", "/api/v1/queues")).status_code == 200
        await proxy.start()
        assert (await _call(app, keys.owner, "GET", "/api/v1/queues")).status_code == 200


async def test_a_revoked_key_is_refused_at_once_even_though_it_was_verified(
    proxied_app: FastAPI, app_db: Database, proxy: TcpProxy
) -> None:
    keys = await make_org_keys(app_db)
    app = proxied_app
    created = await _call(app, keys.owner, "POST", "/api/v1/api-keys", {"name": "temp"})
    temp = created.json()
    assert (await _call(app, temp["key"], "GET", "/api/v1/queues")).status_code == 200
    revoke = await _call(app, keys.owner, "DELETE", f"/api/v1/api-keys/{temp['id']}")
    assert revoke.status_code == 204
    assert (await _call(app, temp["key"], "GET", "/api/v1/queues")).status_code == 401
    await proxy.stop()  # forgotten when refused: an outage does not bring it back
    _assert_503(await _call(app, temp["key"], "GET", "/api/v1/queues"))
