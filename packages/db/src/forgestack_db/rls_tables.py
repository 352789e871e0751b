"""The tables under row-level security, by name: the startup guard checks each one."""

TENANT_TABLES: tuple[str, ...] = (
    "organisations",
    "api_keys",
    "audit_logs",
    "webhook_endpoints",
    "webhook_deliveries",
)
