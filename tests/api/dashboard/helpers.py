"""Signing in to the dashboard the way a browser does: the login form's one-time token, then the
session cookie; and the CSRF token a page carries for its forms."""

import re
from collections.abc import Mapping

import httpx

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


async def sign_in(client: httpx.AsyncClient, api_key: str) -> httpx.Response:
    form = await client.get("/dashboard/login")
    match = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert match, form.text
    return await client.post(
        "/dashboard/login", data={"api_key": api_key, "login_token": match.group(1)}
    )


async def csrf_of(client: httpx.AsyncClient, path: str = "/dashboard") -> str:
    page = await client.get(path)
    match = CSRF.search(page.text)
    assert match, page.text
    return match.group(1)


async def submit(
    client: httpx.AsyncClient,
    url: str,
    fields: Mapping[str, str] | None = None,
    *,
    confirmed: bool = True,
) -> httpx.Response:
    """A dashboard form as a browser sends it: the CSRF token a page carries, the confirmation
    (unless `confirmed` is False: the server then asks first), and the form's `fields`."""
    data = {"csrf": await csrf_of(client), **(fields or {})}
    if confirmed:
        data["confirmed"] = "yes"
    return await client.post(url, data=data)
