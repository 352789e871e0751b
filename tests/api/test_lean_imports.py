"""What an API process imports to serve the API: modules only some pages use wait for those pages.
In a fresh interpreter, since this test run has imported them all already."""

import asyncio
import subprocess
import sys

import pytest
from forgestack_db.database import Database
from forgestack_shared.settings import Settings

from tests.api.conftest import ADMIN_KEY
from tests.fixtures_db import PgTestDatabase, make_org_keys

_CHECK = f"""
import sys
from fastapi.testclient import TestClient
from forgestack_api.main import create_app

with TestClient(create_app()) as client:
    response = client.post(
        "/api/v1/queues/my-new-job/jobs",
        json={{"data": {{"user_id": "u1", "action": "greet"}}}},
        headers={{"Authorization": "Bearer {ADMIN_KEY}"}},
    )
    assert response.status_code == 202, response.text
    print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in {{"jinja2"}})))
"""


@pytest.mark.usefixtures("settings")
def test_serving_an_enqueue_does_not_import_the_dashboards_templates() -> None:
    done = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == ""


_DATABASE_LAYER = ("sqlalchemy", "sqlmodel", "greenlet")

_ORG_KEY_CHECK = """
import sys
from fastapi.testclient import TestClient
from forgestack_api.main import create_app

KEY = sys.argv[1]
LAYER = {layer!r}
headers = {{"Authorization": f"Bearer {{KEY}}"}}
with TestClient(create_app()) as client:
    assert client.get("/readyz").status_code == 200
    job = {{"data": {{"user_id": "u1", "action": "greet"}}}}
    response = client.post("/api/v1/queues/my-new-job/jobs", json=job, headers=headers)
    assert response.status_code == 202, response.text
    bulk = client.post("/api/v1/queues/my-new-job/jobs:bulk", json={{"jobs": [job]}}, headers=headers)
    assert bulk.status_code == 202, bulk.text
    wrong = client.post("/api/v1/queues/my-new-job/jobs", json=job, headers={{"Authorization": "Bearer fsk_00000000_" + "x" * 43}})
    assert wrong.status_code == 401, wrong.text
    print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in LAYER)) or "-")
    keys = client.get("/api/v1/api-keys", headers=headers)
    assert keys.status_code == 200, keys.text
    print(len(keys.json()), "sqlalchemy" in sys.modules)
"""


async def test_enqueueing_with_an_organisation_key_on_postgresql_loads_no_database_layer(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    pg_database: PgTestDatabase,
    app_db: Database,
) -> None:
    """Auth, readiness and both enqueue routes run on asyncpg alone; the first route that needs
    the engine (here the API-key listing) loads it and answers as before."""
    keys = await make_org_keys(app_db)
    monkeypatch.setenv("DATABASE_URL", pg_database.app_url)
    check = _ORG_KEY_CHECK.format(layer=_DATABASE_LAYER)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", check, keys.admin],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lean, listing = done.stdout.strip().splitlines()
    assert lean == "-"
    assert listing == "3 True"  # the organisation's three keys, through the engine
