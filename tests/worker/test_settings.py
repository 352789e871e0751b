"""`uv run arq worker.WorkerSettings` builds a ForgeWorker serving every catalog queue."""

import ast
import importlib
import inspect
import subprocess
import sys
import typing

import arq.worker
import pytest
from arq.worker import Function
from forgestack_queue.arq_cli import use_forge_worker
from forgestack_queue.cron import CRON_QUEUE
from forgestack_queue.worker import ForgeWorker
from forgestack_shared.catalog import AUDIT_LOGS, CATALOG
from forgestack_shared.queues import QueueName
from forgestack_shared.settings import Settings
from forgestack_worker.cron import CRON_JOBS
from forgestack_worker.registry import FUNCTIONS, HANDLERS


def load_worker_settings() -> type:
    """The entry module, imported afresh so it reads this test's settings."""
    import worker

    return importlib.reload(worker).WorkerSettings  # type: ignore[no-any-return]


def test_every_catalog_queue_has_exactly_one_arq_function() -> None:
    assert all(isinstance(f, Function) for f in FUNCTIONS)
    assert sorted(f.name for f in FUNCTIONS) == sorted(q.value for q in CATALOG)
    assert sorted(h.queue for h in HANDLERS) == sorted(q.value for q in CATALOG)


def test_each_function_takes_its_queues_catalog_model() -> None:
    """The typed payload comes from the catalog: a handler annotated with another model fails."""
    for function in FUNCTIONS:
        (param,) = inspect.signature(function.coroutine).parameters.values()
        hints = typing.get_type_hints(function.coroutine)
        spec = CATALOG[QueueName(function.name)]
        assert typing.get_args(hints[param.name]) == (spec.data_model,), function.name
        assert hints["return"] is spec.result_model, function.name


def test_arq_cli_builds_a_forge_worker_from_worker_settings(settings: Settings) -> None:
    use_forge_worker()
    worker_settings = load_worker_settings()
    assert worker_settings.functions is FUNCTIONS
    worker = arq.worker.create_worker(worker_settings, handle_signals=False)
    assert isinstance(worker, ForgeWorker)
    assert worker.queue_prefix == settings.queue_prefix
    assert worker.max_jobs == settings.worker_concurrency
    assert set(worker.handlers) == {f.name for f in FUNCTIONS} | {CRON_QUEUE}
    assert worker_settings.cron_jobs is CRON_JOBS and len(worker.cron_jobs) == len(CRON_JOBS)
    typed = worker.handlers[QueueName.AUDIT_LOGS.value]
    assert typed.data_model is AUDIT_LOGS.data_model
    assert {cj.name for cj in worker.cron_jobs} >= {
        "prune-webhook-deliveries",
        "sweep-webhook-endpoints",
    }
    assert worker.lease_ms == settings.worker_lease_ms
    assert worker.limits == {spec.name.value: spec.limits for spec in CATALOG.values()}


def test_the_lease_is_a_setting(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from forgestack_shared.settings import get_settings

    monkeypatch.setenv("WORKER_LEASE_MS", "10000")
    get_settings.cache_clear()
    use_forge_worker()
    worker = arq.worker.create_worker(load_worker_settings(), handle_signals=False)
    assert worker.lease_ms == 10_000


def test_arq_check_reports_no_running_worker(settings: Settings) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "arq", "worker.WorkerSettings", "--check"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Health check failed" in proc.stdout + proc.stderr


def test_a_running_cli_worker_passes_check_and_stops_on_sigterm(settings: Settings) -> None:
    import os
    import signal
    import time

    import redis

    worker = subprocess.Popen(
        [sys.executable, "-m", "arq", "worker.WorkerSettings"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    client = redis.Redis.from_url(settings.effective_redis_url)
    try:
        deadline = time.monotonic() + 20
        while not client.exists(f"{settings.queue_prefix}:worker:health"):
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            assert time.monotonic() < deadline, "worker never recorded its health"
            time.sleep(0.1)
        check = subprocess.run(
            [sys.executable, "-m", "arq", "worker.WorkerSettings", "--check"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert check.returncode == 0
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        client.close()


HEAVY = (
    "sqlalchemy",
    "sqlmodel",
    "asyncpg",
    "aiosqlite",
    "jinja2",
    "httpx",
    "aiosmtplib",
    "email_validator",
    "forgestack_db",
    "opentelemetry",
    "forgestack_worker.services.email_rendering",
    "forgestack_worker.services.email_message",
    "forgestack_worker.services.webhook_request",
    "forgestack_queue.retention",
    "forgestack_queue.queue_stats",
    "forgestack_shared.jobs.email_templates",
)
LOADED = f"sorted(m for m in {HEAVY!r} if m in sys.modules)"
BUILT = "sorted(m.__name__ for s in CATALOG.values() for m in (s.data_model, s.result_model) if m.__pydantic_complete__)"
START = f"""
import asyncio, gc, sys
import worker
from forgestack_shared.catalog import CATALOG
print({LOADED})
print({BUILT})
print(gc.isenabled(), __import__("forgestack_queue.records").records.JobRecord.__pydantic_complete__)
from forgestack_worker.settings import on_shutdown, on_startup
async def start_and_stop():
    ctx = {{}}
    await on_startup(ctx)
    print({LOADED})
    print({BUILT})
    await on_shutdown(ctx)
asyncio.run(start_and_stop())
"""


def test_the_heavy_clients_load_in_on_startup_not_with_the_entry_module(settings: Settings) -> None:
    """`import worker` is most of a worker's start-up before its first claim: the database layer,
    Jinja2, httpx, aiosmtplib and email-validator load with the resources, on a thread while the
    first jobs are claimed (forgestack_worker.resources), and all of them then, so no handler
    imports one in the loop; the catalog's validators are built then too. OpenTelemetry loads
    only with tracing on (or a job carrying a trace parent)."""
    at_import, built_at_import, collector, after_startup, built_after = _python(START)[-5:]
    assert at_import == "[]"
    # The catalog's validators are built on the start-up thread, not by the import.
    assert built_at_import == "[]"
    # The collector is paused for the imports only (forgestack_worker.gc_pause); the job record
    # model, which claims never use, is not built either.
    assert collector == "True False"
    # The PostgreSQL driver loads only with a PostgreSQL URL (this test runs on SQLite's);
    # OpenTelemetry only with tracing on.
    assert set(HEAVY) - {"asyncpg", "opentelemetry"} <= set(ast.literal_eval(after_startup))
    assert "opentelemetry" not in ast.literal_eval(after_startup)
    all_models = {m.__name__ for s in CATALOG.values() for m in (s.data_model, s.result_model)}
    assert set(ast.literal_eval(built_after)) == all_models


LAZY = ("email.headerregistry", "forgestack_queue.waiting")
"""Loaded on first use, not by `import worker`, nor necessarily by on_startup: the email
package's header parser (forgestack_shared.jobs.notification_email); waiting for a job's result,
which producers do and a worker's handlers seldom (Queue.wait, an arq job's `result`)."""


def test_the_entry_module_leaves_first_use_modules_unloaded(settings: Settings) -> None:
    loaded = _python(f"import sys, worker; print(sorted(m for m in {LAZY!r} if m in sys.modules))")
    assert loaded[-1] == "[]"


UNBUILT = (
    "forgestack_queue.workers:WorkerInfo",
    "forgestack_queue.workers:RunningJob",
    "forgestack_queue.events:QueueEvent",
    "forgestack_queue.history:HistoryEntry",
)
"""Models only readers validate with (the API's listings, a job's record): no worker builds
them, so `import worker` does not either (defer_build)."""


def test_the_entry_module_leaves_reader_models_unbuilt(settings: Settings) -> None:
    check = (
        "import importlib, worker\n"
        f"names = [n.split(':') for n in {UNBUILT!r}]\n"
        "print([f'{m}:{c}' for m, c in names\n"
        "       if getattr(importlib.import_module(m), c).__pydantic_complete__])\n"
    )
    assert _python(check)[-1] == "[]"


def _python(code: str) -> list[str]:
    """What a fresh interpreter prints running `code` (the worker's imports start from nothing)."""
    import os

    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()
