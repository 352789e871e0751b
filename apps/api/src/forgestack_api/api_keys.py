"""Database-backed API keys as an authenticator in the chain of `auth.py`: a key resolves to a
principal bound to its organisation and role. The operator key stays first in the chain.

A key the database verified is trusted for API_KEY_CACHE_TTL_S without asking again: a lookup is a
transaction, several times the cost of the enqueue it guards. That is the revocation bound. A
revocation through this process's API forgets the key at once (`forget`); other processes, the CLI
and the idle-key cron reach the database only, so their revocations hold within the bound.
Concurrent requests with the same expired key share one lookup.

When the database is down, a key this process verified within API_KEY_OUTAGE_GRACE_S is still
accepted, so routes that need only Redis (enqueue, emails, recording audit events) keep working
through the outage: the queue absorbs it. A key never seen, or seen too long ago, is a 503, never
a 500. The cache never outlives the grace: with a grace of 0 every request asks the database.
"""

import asyncio
import time
from collections import OrderedDict

from forgestack_db.key_format import hash_key, looks_like_key
from loguru import logger

from .auth import Principal, Role
from .database_errors import DatabaseUnavailableError
from .key_lookup import KeyLookup

SERVICE_REASON = "api key authentication"
"""The lookup crosses tenants: until the key is found, nobody knows which organisation is calling."""

MAX_REMEMBERED = 10_000
"""Keys remembered per process; the least recently verified are forgotten first."""


class ApiKeyAuthenticator:
    def __init__(self, keys: KeyLookup, *, outage_grace_s: float, cache_ttl_s: float = 0.0) -> None:
        self._keys = keys
        self._grace_s = outage_grace_s
        self._ttl_s = min(cache_ttl_s, outage_grace_s)
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._lookups: dict[str, asyncio.Task[Principal | None]] = {}
        self._forgotten = 0
        """Bumped by `forget`: a lookup that began before a revocation must not cache its answer."""

    async def __call__(self, token: str) -> Principal | None:
        if not looks_like_key(token):
            return None
        digest = hash_key(token)
        remembered = self._verified.get(digest)
        if remembered is not None and time.monotonic() - remembered[1] < self._ttl_s:
            return remembered[0]
        lookup = self._lookups.get(digest)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up(digest, self._forgotten))
            self._lookups[digest] = lookup
            lookup.add_done_callback(lambda done: self._lookup_done(digest, done))
        # Shielded: a caller that goes away does not cancel the answer others are waiting for.
        return await asyncio.shield(lookup)

    def forget(self, key_id: str) -> None:
        """Drops a revoked key from this process's memory, so its next use asks the database."""
        self._forgotten += 1
        for digest, (principal, _) in list(self._verified.items()):
            if principal.key_id == key_id:
                del self._verified[digest]

    def _lookup_done(self, digest: str, done: "asyncio.Task[Principal | None]") -> None:
        if self._lookups.get(digest) is done:
            del self._lookups[digest]
        if not done.cancelled():
            done.exception()  # retrieved here, so one nobody awaited any more is not logged

    async def _look_up(self, digest: str, forgotten: int) -> Principal | None:
        try:
            key = await self._keys.find_active(digest, SERVICE_REASON)
        except DatabaseUnavailableError:
            return self._during_outage(digest)
        if key is None:
            self._verified.pop(digest, None)
            return None
        principal = Principal(
            role=Role(key.role), org_id=key.org_id, key_id=str(key.id), name=key.name
        )
        if forgotten == self._forgotten:
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
