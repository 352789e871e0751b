"""The SQLAlchemy engine, made when a route first needs it.

An API process that only enqueues reaches the database for key lookups alone, and on PostgreSQL
those go through `key_lookup`'s lean door: SQLAlchemy, SQLModel and greenlet (about 22 MiB) load
only when a dashboard, webhook, API-key or audit-log route first asks for the engine. The engine
carries the role guard from its first connection on (`install_role_guard`), as at start-up."""

from typing import TYPE_CHECKING

from forgestack_db.role_report import GuardSettings

if TYPE_CHECKING:
    from forgestack_db.database import Database


class LazyDatabase:
    def __init__(self, url: str, settings: GuardSettings, db: "Database | None" = None) -> None:
        self._url = url
        self._settings = settings
        self._db = db

    @property
    def opened(self) -> bool:
        return self._db is not None

    def get(self) -> "Database":
        if self._db is None:
            # Imported here, not at the top: importing them is the cost this class defers.
            from forgestack_db.database import Database
            from forgestack_db.guard import install_role_guard

            db = Database.from_url(self._url)
            install_role_guard(db.engine, self._settings)
            self._db = db
        return self._db

    async def dispose(self) -> None:
        if self._db is not None:
            await self._db.dispose()
