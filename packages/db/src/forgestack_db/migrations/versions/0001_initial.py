"""Organisations, API keys and the append-only audit log; row-level security on PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from forgestack_db.migrate import DEFAULT_APP_ROLE, validated_role_name
from forgestack_db.types import BigIntegerPK, JSONDocument, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORG = "NULLIF(current_setting('app.current_org_id', true), '')::uuid"
SERVICE = "COALESCE(current_setting('app.service_context', true), '') <> ''"
# (table, tenant column, commands a tenant may run, grants to the application role)
SECURED = (
    ("organisations", "id", "ALL", "SELECT, INSERT, UPDATE"),
    ("api_keys", "org_id", "ALL", "SELECT, INSERT, UPDATE"),
    ("audit_logs", "org_id", "SELECT", "SELECT, INSERT"),
)


def upgrade() -> None:
    _create_tables()
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        role = context.config.attributes.get("app_role", DEFAULT_APP_ROLE)
        _secure_postgresql(validated_role_name(role))
    elif dialect == "sqlite":
        _append_only_sqlite()


def downgrade() -> None:
    op.drop_table("audit_logs")
    op.drop_table("api_keys")
    op.drop_table("organisations")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS forgestack_reject_audit_change()")


def _create_tables() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("role IN ('member', 'owner', 'admin')", name="ck_api_keys_role"),
    )
    op.create_index("ix_api_keys_org_id", "api_keys", ["org_id"])
    op.create_table(
        "audit_logs",
        sa.Column("id", BigIntegerPK, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organisations.id"), nullable=True),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("actor_type", sa.String(16), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=True),
        sa.Column("actor_email", sa.String(320), nullable=True),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("resource_type", sa.String(100), nullable=False),
        sa.Column("resource_id", sa.String(200), nullable=True),
        sa.Column("resource_name", sa.String(200), nullable=True),
        sa.Column("changes", JSONDocument, nullable=True),
        sa.Column("metadata", JSONDocument, nullable=True),
        sa.Column("ip_address", sa.String(45), nullable=True),
        sa.Column("user_agent", sa.String(500), nullable=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "actor_type IN ('user', 'api_key', 'system')", name="ck_audit_logs_actor_type"
        ),
    )
    op.create_index("ix_audit_logs_org_occurred", "audit_logs", ["org_id", "occurred_at", "id"])


def _secure_postgresql(role: str) -> None:
    # The group role holds the grants; operators make their login role a member of it. Creating it
    # here needs CREATEROLE; a DBA may pre-create it instead. A concurrent creator is not an error.
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$
    """)
    for table, column, tenant_commands, grants in SECURED:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        # FORCE subjects the owner too, so no login (bar a superuser) reads around the policies.
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        own_rows = f"{column} = {ORG}"
        check = f"WITH CHECK ({own_rows})" if tenant_commands == "ALL" else ""
        op.execute(f"""
            CREATE POLICY {table}_tenant ON {table} FOR {tenant_commands} TO {role}
            USING ({own_rows}) {check}
        """)
        op.execute(f"""
            CREATE POLICY {table}_service ON {table} FOR ALL TO {role}
            USING ({SERVICE}) WITH CHECK ({SERVICE})
        """)
        op.execute(f"GRANT {grants} ON {table} TO {role}")
    op.execute("""
        CREATE FUNCTION forgestack_reject_audit_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_logs is append-only: % is not allowed', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
    """)
    # Statement-level, so it fires even when the statement would touch no visible row.
    op.execute("""
        CREATE TRIGGER audit_logs_append_only
        BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_logs
        FOR EACH STATEMENT EXECUTE FUNCTION forgestack_reject_audit_change()
    """)


def _append_only_sqlite() -> None:
    for event in ("UPDATE", "DELETE"):
        op.execute(f"""
            CREATE TRIGGER audit_logs_no_{event.lower()} BEFORE {event} ON audit_logs
            BEGIN SELECT RAISE(ABORT, 'audit_logs is append-only: {event} is not allowed'); END
        """)
