"""PostgreSQL text cannot hold NUL (U+0000): a request that would store or filter on one is the
caller's error, answered 422 with a reason, on every route that reaches the database."""

from typing import Any

import pytest
from fastapi import FastAPI
from forgestack_db.database import Database

from tests.api.test_api_keys import as_key
from tests.fixtures_db import make_org_keys

NUL = "a\u0000b"


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        (
            "POST",
            "/api/v1/webhooks/endpoints",
            {"json": {"url": "https://1.1.1.1/hook", "description": NUL}},
        ),
        ("POST", "/api/v1/webhooks/endpoints", {"json": {"url": "https://1.1.1.1/" + NUL}}),
        ("GET", "/api/v1/webhooks/deliveries", {"params": {"event_type": NUL}}),
        ("GET", "/api/v1/webhooks/deliveries", {"params": {"event_id": NUL}}),
        ("GET", "/api/v1/audit-logs", {"params": {"actor_id": NUL}}),
        ("POST", "/api/v1/api-keys", {"json": {"name": NUL, "role": "member"}}),
    ],
)
async def test_a_nul_character_is_a_422_not_a_500(
    pg_app: FastAPI, app_db: Database, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    keys = await make_org_keys(app_db)
    async with as_key(pg_app, keys.owner) as client:
        response = await client.request(method, url, **kwargs)
        listed = await client.get("/api/v1/webhooks/endpoints")
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_text"
    assert "NUL" in response.json()["detail"]
    assert listed.json() == []
