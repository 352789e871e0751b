"""Who is calling: bearer keys resolved to a `Principal` by a chain of authenticators.

The operator key from settings is the first authenticator. Database-backed API keys bound to an
organisation plug in as another authenticator appended to the chain in the lifespan, without any
route changing: routes only ask for `require_principal` or `require_admin` (see `deps.py`).
"""

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from forgestack_shared.settings import Settings


class Role(StrEnum):
    MEMBER = "member"
    OWNER = "owner"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller. The operator key has no organisation and no key id."""

    role: Role
    org_id: UUID | None = None
    key_id: str | None = None
    name: str = "operator"

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


Authenticator = Callable[[str], Awaitable[Principal | None]]
"""Maps a bearer token to a principal, or None when the token is not one of its keys."""


def admin_key_authenticator(settings: Settings) -> Authenticator:
    """Accepts FORGESTACK_ADMIN_API_KEY; compared in constant time so timing reveals nothing."""
    secret = settings.forgestack_admin_api_key
    expected = secret.get_secret_value().encode() if secret else None

    async def authenticate(token: str) -> Principal | None:
        if not expected:
            return None
        if hmac.compare_digest(token.encode(), expected):
            return Principal(role=Role.ADMIN)
        return None

    return authenticate


async def authenticate(token: str, authenticators: list[Authenticator]) -> Principal | None:
    """The first authenticator that knows the token wins."""
    for authenticator in authenticators:
        principal = await authenticator(token)
        if principal is not None:
            return principal
    return None
