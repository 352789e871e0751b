"""ForgeStack's database layer: SQLModel tables, the async engine, tenant and service contexts
(the only doors to a session), the startup role guard and the Alembic migrations."""

from .database import Database
from .guard import UnsafeDatabaseRoleError, check_app_role
from .models import ActorType, ApiKey, ApiKeyRole, AuditLog, Organisation

__all__ = [
    "ActorType",
    "ApiKey",
    "ApiKeyRole",
    "AuditLog",
    "Database",
    "Organisation",
    "UnsafeDatabaseRoleError",
    "check_app_role",
]
