"""ForgeStack's database layer: SQLModel tables, the async engine, tenant and service contexts
(the only doors to a session), the startup role guard and the Alembic migrations.

Import what you use from its module (`forgestack_db.database`, `.models`, ...): this package itself
imports nothing, so the API's lean door (`lean_keys`, `role_report`, `key_roles`) can be loaded
without SQLAlchemy and SQLModel."""
