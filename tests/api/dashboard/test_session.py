"""Login, the session cookie's flags, CSRF and confirmation, and the key never leaving the cookie."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import ADMIN_KEY
from tests.api.dashboard.helpers import csrf_of, sign_in

QUEUE = "/api/v1/queues/my-new-job"


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Not signed in (this module's own, over the package's signed-in one): the session is what
    these tests are about."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


async def test_pages_need_a_session(browser: httpx.AsyncClient) -> None:
    for path in ("/dashboard", "/dashboard/queues/my-new-job", "/dashboard/jobs/x"):
        response = await browser.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/login"


async def test_a_wrong_key_is_refused_and_a_right_one_sets_a_strict_httponly_cookie(
    browser: httpx.AsyncClient,
) -> None:
    refused = await sign_in(browser, "not-a-key")
    assert refused.status_code == 401
    assert "not valid" in refused.text
    assert (await browser.get("/dashboard")).status_code == 303

    signed_in = await sign_in(browser, ADMIN_KEY)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/dashboard"
    cookie = next(
        c for c in signed_in.headers.get_list("set-cookie") if c.startswith("forgestack_dashboard=")
    )
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/dashboard"} <= flags
    assert "secure" not in flags  # plain http: a Secure cookie would never come back
    overview = await browser.get("/dashboard")
    assert overview.status_code == 200
    assert ADMIN_KEY not in overview.text
    assert "my-new-job" in overview.text
    assert "frame-ancestors 'none'" in overview.headers["content-security-policy"]


async def test_the_cookie_is_secure_over_https(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
        response = await sign_in(client, ADMIN_KEY)
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("forgestack_dashboard=")
    )
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}


async def test_login_without_the_forms_own_token_is_refused(browser: httpx.AsyncClient) -> None:
    response = await browser.post("/dashboard/login", data={"api_key": ADMIN_KEY})
    assert response.status_code == 400
    assert "forgestack_dashboard=" not in response.headers.get("set-cookie", "")


async def test_actions_need_the_csrf_token_and_a_confirmation(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    data = {"user_id": "u", "action": "greet"}
    job_id = (await client.post(f"{QUEUE}/jobs", json={"data": data})).json()["id"]
    await sign_in(browser, ADMIN_KEY)
    url = f"/dashboard/jobs/{job_id}/actions/remove"

    forged = await browser.post(url, data={"confirmed": "yes"})
    assert forged.status_code == 403
    wrong = await browser.post(url, data={"confirmed": "yes", "csrf": "0" * 64})
    assert wrong.status_code == 403
    assert (await client.get(f"/api/v1/jobs/{job_id}")).status_code == 200

    csrf = await csrf_of(browser)
    unconfirmed = await browser.post(url, data={"csrf": csrf})
    assert unconfirmed.status_code == 200
    assert "Remove this job for good?" in unconfirmed.text
    assert 'name="confirmed" value="yes"' in unconfirmed.text
    assert (await client.get(f"/api/v1/jobs/{job_id}")).status_code == 200

    done = await browser.post(url, data={"csrf": csrf, "confirmed": "yes"})
    assert done.status_code == 303
    assert done.headers["location"].startswith("/dashboard/queues/my-new-job?msg=")
    assert (await client.get(f"/api/v1/jobs/{job_id}")).status_code == 404


async def test_sign_out_clears_the_session(browser: httpx.AsyncClient) -> None:
    await sign_in(browser, ADMIN_KEY)
    csrf = await csrf_of(browser)
    response = await browser.post("/dashboard/logout", data={"csrf": csrf})
    assert response.status_code == 303
    assert (await browser.get("/dashboard")).status_code == 303
