"""Entry module for `uv run arq worker.WorkerSettings`: the process's composition root.

Importing it makes arq build a `ForgeWorker` (see forgestack_queue.arq_cli.use_forge_worker) and
reads settings once, here, rather than in any library module."""

from forgestack_queue.arq_cli import use_forge_worker
from forgestack_shared.settings import get_settings
from forgestack_worker.settings import build_worker_settings

use_forge_worker()
WorkerSettings = build_worker_settings(get_settings())
