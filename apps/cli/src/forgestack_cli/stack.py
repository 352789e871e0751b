"""What `forgestack dev` sets up, as an ordered list of steps over one shared `DevStack`.

Each step fills in what is not configured (embedded Redis, SQLite, an admin key), adds the
variables the children need to `stack.env`, starts processes through `stack.spawn` (stopped for
it on exit, apps before infrastructure) and adds a line to the summary printed once the API
answers. A new dev service is one more step in `SETUP_STEPS`, before `start_app_processes`: a
mail catcher when SMTP_HOST is unset, database migrations and a first organisation and key.
Start such services as child processes, not threads: the supervisor stays single-threaded.
"""

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from forgestack_shared.dev_redis import dev_redis_url_file
from forgestack_shared.redact import redact_url
from forgestack_shared.settings import Settings

from .db_commands import prepare_dev_database
from .dev_key import KEY_FILE, dev_admin_key
from .embedded_redis import port_is_free, start_embedded_redis
from .mail_catcher import use_or_start_mail_catcher
from .processes import ManagedProcess, spawn


class DevError(RuntimeError):
    """A setup problem the developer can fix; printed without a traceback."""


@dataclass(slots=True)
class DevStack:
    settings: Settings
    env: dict[str, str]
    """The children's environment: the supervisor's, plus what the steps decided."""
    data_dir: Path
    processes: list[ManagedProcess] = field(default_factory=list)
    summary: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def create(cls, settings: Settings) -> "DevStack":
        data_dir = settings.forgestack_data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # Absolute, so every child finds the same SQLite file and dev data whatever its cwd.
        env["FORGESTACK_DATA_DIR"] = str(data_dir)
        env["PYTHONUNBUFFERED"] = "1"
        # Shorter than the stop grace below: Ctrl-C releases running jobs before any SIGKILL.
        env.setdefault("WORKER_SHUTDOWN_GRACE_S", "3")
        return cls(settings=settings, env=env, data_dir=data_dir)

    def spawn(
        self, name: str, argv: Sequence[str], *, tier: int = 1, quiet: bool = False
    ) -> ManagedProcess:
        proc = spawn(name, argv, env=self.env, tier=tier, quiet=quiet)
        self.processes.append(proc)
        return proc

    def report(self, label: str, value: str) -> None:
        self.summary.append((label, value))

    @property
    def api_base_url(self) -> str:
        host = self.settings.api_host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - shown as a URL, not bound
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.settings.api_port}"


DevStep = Callable[[DevStack], None]


def use_or_start_redis(stack: DevStack) -> None:
    if stack.settings.redis_url:
        stack.report("Redis", f"{redact_url(stack.settings.redis_url)} (REDIS_URL)")
        return
    proc, url = start_embedded_redis(stack.data_dir, stack.env)
    stack.processes.append(proc)
    stack.env["REDIS_URL"] = url
    dev_redis_url_file(stack.data_dir).write_text(url)
    stack.report("Redis", f"{url} (embedded, pid {proc.pid})")


def use_or_default_database(stack: DevStack) -> None:
    if stack.settings.database_url:
        stack.report("Database", f"{redact_url(stack.settings.database_url)} (DATABASE_URL)")
        return
    stack.report("Database", f"SQLite at {stack.data_dir / 'forgestack.db'}")


def use_or_generate_admin_key(stack: DevStack) -> None:
    if stack.settings.forgestack_admin_api_key is not None:
        stack.report("Admin API key", "from FORGESTACK_ADMIN_API_KEY (not shown)")
        return
    key, made = dev_admin_key(stack.data_dir)
    stack.env["FORGESTACK_ADMIN_API_KEY"] = key
    kept = f"{'new, ' if made else ''}kept in {stack.data_dir / KEY_FILE}"
    stack.report("Admin API key", f"{key}  ($KEY in the README's examples; {kept})")


def start_app_processes(stack: DevStack) -> None:
    """The same programs as production (`api`, `arq worker.WorkerSettings`), as children."""
    settings = stack.settings
    if not port_is_free(settings.api_port, settings.api_host):
        raise DevError(
            f"{settings.api_host}:{settings.api_port} is in use: stop what runs there "
            "or choose another port with API_PORT"
        )
    stack.spawn("api", [sys.executable, "-m", "forgestack_api"])
    stack.spawn("worker", [sys.executable, "-m", "arq", "worker.WorkerSettings"])
    stack.report("API", stack.api_base_url)
    stack.report("API docs", f"{stack.api_base_url}/docs")
    stack.report("Health", f"{stack.api_base_url}/healthz")


SETUP_STEPS: list[DevStep] = [
    use_or_start_redis,
    use_or_default_database,
    prepare_dev_database,
    use_or_generate_admin_key,
    use_or_start_mail_catcher,
    start_app_processes,
]
"""In order; steps that need Redis or the database come after those, apps come last."""
