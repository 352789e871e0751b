"""Entry module for `uv run arq worker.WorkerSettings`: the process's composition root.

Importing it makes arq build a `ForgeWorker` (see forgestack_queue.arq_cli.use_forge_worker) and
reads settings once, here, rather than in any library module. Redis need not be up yet: the
worker waits for it (ForgeWorker.main), so a fleet restarted in any order comes up by itself."""

from forgestack_db.guard import UnsafeDatabaseRoleError
from forgestack_db.startup import check_database_login
from forgestack_queue.arq_cli import use_forge_worker
from forgestack_shared.startup import (
    check_production,
    exit_on_startup_error,
    load_settings,
    unsafe_database_login,
)
from forgestack_worker.settings import build_worker_settings

with exit_on_startup_error("worker"):
    _settings = load_settings()
    check_production(_settings, needs_admin_key=False)
    try:
        check_database_login(_settings.effective_database_url, _settings)
    except UnsafeDatabaseRoleError as exc:
        raise unsafe_database_login(exc) from exc

use_forge_worker()
WorkerSettings = build_worker_settings(_settings)
