"""A scratch PostgreSQL database for one bench run: created on the local server, migrated, with
the app's non-superuser login (row-level security applies), and dropped with its roles at exit."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import make_url


@asynccontextmanager
async def scratch_database(
    superuser_url: str, tag_prefix: str = "fsbench_wh"
) -> AsyncIterator[str]:
    """A fresh database, migrated, and the app login's URL (member of the app role only)."""
    from forgestack_db.engine import create_engine
    from forgestack_db.migrate import upgrade_async
    from forgestack_db.roles import create_app_login

    tag = uuid.uuid4().hex[:8]
    name, role, login = (
        f"{tag_prefix}_{tag}",
        f"{tag_prefix}_{tag}_app",
        f"{tag_prefix}_{tag}_login",
    )
    admin = make_url(superuser_url).set(drivername="postgresql")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    await conn.execute(f"CREATE DATABASE {name}")
    owner_url = make_url(superuser_url).set(drivername="postgresql+asyncpg", database=name)
    owner = owner_url.render_as_string(hide_password=False)
    try:
        await upgrade_async(owner, app_role=role)
        engine = create_engine(owner, pool_size=1)
        await create_app_login(engine, login, tag, app_role=role)
        await engine.dispose()
        yield owner_url.set(username=login, password=tag).render_as_string(hide_password=False)
    finally:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f"DROP ROLE IF EXISTS {login}")
        await conn.execute(f"DROP ROLE IF EXISTS {role}")
        await conn.close()
