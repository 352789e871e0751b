"""`Database`: the engine plus the only two doors to a session, `tenant_context` and
`service_context`. Each door opens one transaction and, on PostgreSQL, sets the row-level-security
variables with `set_config(..., true)`: transaction-local, so a pooled connection never carries one
tenant's context into the next transaction."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from loguru import logger
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from .engine import create_engine, is_postgresql
from .models import ApiKeyRole

ORG_SETTING = "app.current_org_id"
USER_SETTING = "app.current_user_id"
ROLE_SETTING = "app.current_role"
SERVICE_SETTING = "app.service_context"


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 5) -> "Database":
        return cls(create_engine(url, pool_size=pool_size))

    @property
    def is_postgresql(self) -> bool:
        return is_postgresql(self.engine)

    @asynccontextmanager
    async def tenant_context(
        self, org_id: uuid.UUID, user_id: str | None = None, role: ApiKeyRole | None = None
    ) -> AsyncIterator[AsyncSession]:
        """A transaction that sees and writes only `org_id`'s rows (enforced by PostgreSQL; SQLite,
        the single-developer path, has no RLS, so queries also filter on `org_id` themselves)."""
        settings = {
            ORG_SETTING: str(org_id),
            USER_SETTING: user_id or "",
            ROLE_SETTING: role.value if role else "",
        }
        async with self._transaction(settings) as session:
            yield session

    @asynccontextmanager
    async def service_context(self, reason: str) -> AsyncIterator[AsyncSession]:
        """A transaction that crosses tenants, for work no tenant owns (the audit writer, API-key
        lookup before the org is known). The reason is logged and visible to PostgreSQL."""
        reason = reason.strip()
        if not reason:
            raise ValueError("service_context needs a reason: it is what the log records")
        logger.bind(service_context=reason).info("service context opened: {}", reason)
        async with self._transaction({SERVICE_SETTING: reason}) as session:
            yield session

    @asynccontextmanager
    async def _transaction(self, settings: dict[str, str]) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            if self.is_postgresql:
                conn = await session.connection()
                await conn.execute(_set_config_statement(len(settings)), _params(settings))
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def _set_config_statement(count: int) -> sa.TextClause:
    """All variables in one round trip; `true` makes each one transaction-local."""
    calls = ", ".join(f"set_config(:n{i}, :v{i}, true)" for i in range(count))
    return sa.text(f"SELECT {calls}")


def _params(settings: dict[str, str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for i, (name, value) in enumerate(settings.items()):
        params[f"n{i}"] = name
        params[f"v{i}"] = value
    return params
