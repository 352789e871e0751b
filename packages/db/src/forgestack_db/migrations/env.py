"""Alembic environment. `forgestack_db.migrate` hands in an open connection; the plain `alembic`
command (for writing new revisions) gets an async engine from `sqlalchemy.url`."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from forgestack_db import models  # noqa: F401 - registers the tables on SQLModel.metadata
from forgestack_db.engine import create_engine

config = context.config
target_metadata = SQLModel.metadata


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_url() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run_with)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: they depend on the backend")

given = config.attributes.get("connection")
if given is not None:
    run_with(given)
else:
    asyncio.run(run_from_url())
