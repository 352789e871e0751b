"""Who is calling: bearer keys resolved to a `Principal` by a chain of authenticators.

The operator key from settings is the first authenticator and the only way to the `operator` role:
platform staff, every organisation. Database-backed API keys are bound to one organisation, and
whatever their role (`member`, `owner`, `admin`) they reach that organisation only. The README's
roles table is the contract; `access.py` applies it to jobs.
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
    """An organisation's administrator: an owner who may also mint admin keys. Never cross-tenant."""
    OPERATOR = "operator"
    """Platform staff (FORGESTACK_ADMIN_API_KEY): all organisations, queue-wide actions."""


ROLE_RANK = {Role.MEMBER: 0, Role.OWNER: 1, Role.ADMIN: 2, Role.OPERATOR: 3}
"""Each role can do what the ones below it can; an organisation's roles only inside it."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller. The operator has no organisation and no key id; every other key has both."""

    role: Role
    org_id: UUID | None = None
    key_id: str | None = None
    name: str = "operator"

    def __post_init__(self) -> None:
        if (self.role is Role.OPERATOR) != (self.org_id is None):
            raise ValueError("the operator has no organisation; every other role has one")

    def at_least(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    @property
    def owner(self) -> str | None:
        """The job layer's owner for this caller's jobs: its organisation; None for the operator."""
        return None if self.org_id is None else str(self.org_id)


Authenticator = Callable[[str], Awaitable[Principal | None]]
"""Maps a bearer token to a principal, or None when the token is not one of its keys."""


def admin_key_authenticator(settings: Settings) -> Authenticator:
    """Accepts FORGESTACK_ADMIN_API_KEY as the operator; compared in constant time."""
    secret = settings.forgestack_admin_api_key
    expected = secret.get_secret_value().encode() if secret else None

    async def authenticate(token: str) -> Principal | None:
        if not expected:
            return None
        if hmac.compare_digest(token.encode(), expected):
            return Principal(role=Role.OPERATOR)
        return None

    return authenticate


async def authenticate(token: str, authenticators: list[Authenticator]) -> Principal | None:
    """The first authenticator that knows the token wins."""
    for authenticator in authenticators:
        principal = await authenticator(token)
        if principal is not None:
            return principal
    return None
