"""Signing in to the dashboard the way a browser does: the login form's one-time token, then the
session cookie; and the CSRF token a page carries for its forms."""

import re

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
