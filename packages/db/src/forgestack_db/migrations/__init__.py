"""Alembic environment and revisions; run them through `forgestack_db.migrate`."""
