"""The dashboard's login: the API key lives in an HttpOnly, SameSite=Strict cookie (Secure over
https), never in a URL, a page or a log line, and every request re-authenticates it exactly as a
bearer key would, so a revoked key logs the browser out at once and roles apply unchanged.

Actions are POSTs carrying a CSRF token: an HMAC of the session's key, so it needs no server-side
state, differs per key and cannot be computed by a page that does not know the key. SameSite=Strict
already keeps the cookie off cross-site requests; the token is the second lock."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response

from ..auth import Principal, authenticate
from ..lifespan import resources_of

SESSION_COOKIE = "forgestack_dashboard"
LOGIN_COOKIE = "forgestack_dashboard_login"
"""A one-time token for the login form itself, so another site cannot log a browser in."""
COOKIE_PATH = "/dashboard"
SESSION_MAX_AGE_S = 8 * 3600
_CSRF_CONTEXT = b"forgestack-dashboard-csrf-v1"


class LoginRequired(Exception):
    """No session, or its key no longer authenticates: the dashboard redirects to the login page."""


@dataclass(frozen=True, slots=True)
class DashboardUser:
    principal: Principal
    csrf: str


def csrf_token(api_key: str) -> str:
    return hmac.new(api_key.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(request: Request, response: Response, api_key: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        api_key,
        max_age=SESSION_MAX_AGE_S,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def set_login_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def login_token_valid(request: Request, submitted: str) -> bool:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    return bool(expected) and hmac.compare_digest(expected.encode(), submitted.encode())


async def principal_for_key(request: Request, api_key: str) -> Principal | None:
    return await authenticate(api_key, resources_of(request).authenticators)


async def current_user(request: Request) -> DashboardUser:
    """A dependency of every dashboard page: the session's principal, or `LoginRequired`."""
    api_key = request.cookies.get(SESSION_COOKIE)
    if not api_key:
        raise LoginRequired
    principal = await principal_for_key(request, api_key)
    if principal is None:
        raise LoginRequired
    return DashboardUser(principal=principal, csrf=csrf_token(api_key))


def csrf_valid(user: DashboardUser, submitted: str) -> bool:
    return hmac.compare_digest(user.csrf.encode(), submitted.encode())
