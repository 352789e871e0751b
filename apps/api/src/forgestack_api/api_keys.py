"""Database-backed API keys as an authenticator in the chain of `auth.py`: a key resolves to a
principal bound to its organisation and role. The operator key stays first in the chain."""

from forgestack_db.api_keys import find_active_key, looks_like_key, mark_used
from forgestack_db.database import Database

from .auth import Authenticator, Principal, Role

SERVICE_REASON = "api key authentication"
"""The lookup crosses tenants: until the key is found, nobody knows which organisation is calling."""


def api_key_authenticator(db: Database) -> Authenticator:
    async def authenticate(token: str) -> Principal | None:
        if not looks_like_key(token):
            return None
        async with db.service_context(SERVICE_REASON) as session:
            key = await find_active_key(session, token)
            if key is None:
                return None
            await mark_used(session, key)
        return Principal(role=Role(key.role), org_id=key.org_id, key_id=str(key.id), name=key.name)

    return authenticate
