"""`forgestack dev`: the whole system on one machine, with embedded defaults for what is unset,
supervised until Ctrl-C or SIGTERM, or until one of its processes dies."""

import signal
import time
from types import FrameType

import click
import httpx
from forgestack_shared.dev_redis import dev_redis_url_file
from forgestack_shared.settings import Environment, Settings
from forgestack_shared.startup import (
    StartupError,
    check_redis,
    exit_on_startup_error,
    load_settings,
)

from .embedded_redis import EmbeddedRedisError, redis_server_binary
from .processes import stop_all
from .stack import SETUP_STEPS, DevError, DevStack

READY_TIMEOUT_S = 60.0
POLL_S = 0.1


class StopRequest:
    """Set by SIGINT/SIGTERM. A flag, not KeyboardInterrupt: an exception raised between a
    fork and its bookkeeping could leave a child nobody stops."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.signum = signum

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self)


def _dead_child(stack: DevStack) -> str | None:
    for proc in stack.processes:
        code = proc.poll()
        if code is not None and not proc.stopping:
            return f"{proc.name} (pid {proc.pid}) exited with code {code}"
    return None


def _wait_until_ready(stack: DevStack, stop: StopRequest) -> bool:
    """True once /healthz answers; False when a stop was requested first."""
    url = f"{stack.api_base_url}/healthz"
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(timeout=1.0) as client:
        while stop.signum is None:
            dead = _dead_child(stack)
            if dead:
                raise DevError(dead)
            try:
                if client.get(url).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise DevError(f"the API did not answer {url} within {READY_TIMEOUT_S:.0f} s")
            time.sleep(POLL_S)
    return False


def _print_summary(stack: DevStack) -> None:
    width = max(len(label) for label, _ in stack.summary)
    click.secho("\nForgeStack is running", bold=True)
    for label, value in stack.summary:
        click.echo(f"  {label.ljust(width)}  {value}")
    click.echo("Press Ctrl-C to stop.\n")


def preflight() -> Settings:
    """What would stop dev later, checked before anything starts: one line, nothing to clean up."""
    settings = load_settings()
    if settings.environment is Environment.PROD:
        raise StartupError(
            "ENVIRONMENT",
            "`forgestack dev` embeds development defaults, and ENVIRONMENT=prod refuses them",
            "unset ENVIRONMENT (or set ENVIRONMENT=dev), or run `api` and the worker instead",
        )
    if settings.redis_url:
        check_redis(settings)
    else:
        redis_server_binary()
    return settings


def run_dev() -> int:
    """Exit code: 0 after a requested stop, 1 when setup failed or a process died, 2 when a
    setting is wrong."""
    with exit_on_startup_error("forgestack dev"):
        settings = preflight()
    stop = StopRequest()
    stop.install()
    stack = DevStack.create(settings)
    try:
        for step in SETUP_STEPS:
            if stop.signum is not None:
                return 0
            step(stack)
        if not _wait_until_ready(stack, stop):
            return 0
        _print_summary(stack)
        while stop.signum is None:
            dead = _dead_child(stack)
            if dead:
                raise DevError(f"{dead}; stopping everything")
            time.sleep(POLL_S)
        return 0
    except (DevError, EmbeddedRedisError) as exc:
        click.secho(f"forgestack dev: {exc}", fg="red", err=True)
        return 1
    finally:
        click.echo("Stopping ForgeStack ...", err=True)
        stop_all(stack.processes)
        dev_redis_url_file(stack.data_dir).unlink(missing_ok=True)
        click.echo("Stopped.", err=True)


@click.command()
def dev() -> None:
    """Run the whole system on this machine until Ctrl-C.

    Starts the API and a worker, and embeds what is not configured: a Redis server when
    REDIS_URL is unset, SQLite when DATABASE_URL is unset, and an admin API key (kept under the
    data dir, printed each time) when FORGESTACK_ADMIN_API_KEY is unset.
    """
    raise SystemExit(run_dev())
