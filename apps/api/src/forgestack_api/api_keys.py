"""Database-backed API keys as an authenticator in the chain of `auth.py`: a key resolves to a
principal bound to its organisation and role. The operator key stays first in the chain.

Every request checks its key against the database, so a revocation takes effect at once. When the
database is down, a key this process verified within API_KEY_OUTAGE_GRACE_S is still accepted, so
routes that need only Redis (enqueue, emails, recording audit events) keep working through the
outage: the queue absorbs it. A key never seen, or seen too long ago, is a 503, never a 500.
"""

import time
from collections import OrderedDict

from forgestack_db.api_keys import find_active_key, hash_key, looks_like_key, mark_used
from forgestack_db.database import Database
from loguru import logger

from .auth import Authenticator, Principal, Role
from .database_errors import DatabaseUnavailableError, database_unavailable_as_503

SERVICE_REASON = "api key authentication"
"""The lookup crosses tenants: until the key is found, nobody knows which organisation is calling."""

MAX_REMEMBERED = 10_000
"""Keys remembered for outages per process; the least recently verified are forgotten first."""


class ApiKeyAuthenticator:
    def __init__(self, db: Database, *, outage_grace_s: float) -> None:
        self._db = db
        self._grace_s = outage_grace_s
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def __call__(self, token: str) -> Principal | None:
        if not looks_like_key(token):
            return None
        digest = hash_key(token)
        try:
            async with database_unavailable_as_503(), self._db.service_context(SERVICE_REASON) as s:
                key = await find_active_key(s, token)
                if key is not None:
                    await mark_used(s, key)
        except DatabaseUnavailableError:
            return self._during_outage(digest)
        if key is None:
            self._verified.pop(digest, None)
            return None
        principal = Principal(
            role=Role(key.role), org_id=key.org_id, key_id=str(key.id), name=key.name
        )
        self._remember(digest, principal)
        return principal

    def _remember(self, digest: str, principal: Principal) -> None:
        if self._grace_s <= 0:
            return
        self._verified[digest] = (principal, time.monotonic())
        self._verified.move_to_end(digest)
        while len(self._verified) > MAX_REMEMBERED:
            self._verified.popitem(last=False)

    def _during_outage(self, digest: str) -> Principal:
        remembered = self._verified.get(digest)
        if remembered is None or time.monotonic() - remembered[1] > self._grace_s:
            raise DatabaseUnavailableError("the key cannot be checked while the database is down")
        principal = remembered[0]
        logger.warning("database down: key {} accepted as verified recently", principal.key_id)
        return principal


def api_key_authenticator(db: Database, *, outage_grace_s: float) -> Authenticator:
    return ApiKeyAuthenticator(db, outage_grace_s=outage_grace_s)
