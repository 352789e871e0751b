"""`forgestack new-job NAME`: every step of adding a queue, written in one go.

The plan is computed in memory first (new files, and each registry with its entry inserted),
formatted with ruff, then either printed as a diff (`--dry-run`) or written. Anything that would
make the result wrong refuses before a byte is written: exit 2 and one line saying why."""

import difflib
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click

from . import job_edits as edits
from .job_cron import edit_cron
from .job_templates import (
    DEFAULT_FIELDS,
    DEFAULT_RESULT,
    TYPES,
    Fields,
    JobNames,
    handler_module,
    handler_test_module,
    models_module,
)

NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
FIELD = re.compile(r"^([a-z_][a-z0-9_]*):([a-z]+)$")
BACKOFF = re.compile(r"^(fixed|exponential)(?::(\d+))?$")
DEFAULT_BACKOFF_MS = 1000


class Refusal(Exception):
    """Why the command will not write anything; printed as its one line."""


def _fields(specs: tuple[str, ...], default: Fields) -> Fields:
    parsed: list[tuple[str, str]] = []
    for spec in specs:
        match = FIELD.match(spec)
        if not match or match.group(2) not in TYPES:
            raise Refusal(
                f"field {spec!r} is not name:type with a snake_case name and a type among "
                f"{', '.join(TYPES)}"
            )
        parsed.append((match.group(1), match.group(2)))
    names = [name for name, _ in parsed]
    if len(set(names)) != len(names):
        raise Refusal(f"a field is named twice: {', '.join(names)}")
    return tuple(parsed) or default


def _backoff(text: str) -> tuple[str, int]:
    match = BACKOFF.match(text)
    if not match:
        raise Refusal(f"--backoff {text!r} is not fixed|exponential[:milliseconds]")
    return match.group(1), int(match.group(2) or DEFAULT_BACKOFF_MS)


def _format(root: Path, path: str, text: str) -> str:
    """ruff's import sorting and formatting, as `ruff check --fix` and `ruff format` would."""
    if not path.endswith(".py"):
        return text
    for args in (["check", "--fix-only", "--select", "I", "--quiet"], ["format"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "--stdin-filename", path, "-"],
            input=text,
            capture_output=True,
            text=True,
            cwd=root,
            check=False,
        )
        if done.returncode != 0:
            raise Refusal(f"ruff could not format the generated {path}: {done.stderr.strip()}")
        text = done.stdout
    return text


def plan(
    root: Path,
    n: JobNames,
    data: Fields,
    result: Fields,
    attempts: int,
    backoff: tuple[str, int],
    cron: str | None = None,
    *,
    operator_only: bool = False,
) -> dict[str, str]:
    """Every file to write, path (relative to `root`) to its whole new text."""
    new_files = {
        f"packages/shared/src/forgestack_shared/jobs/{n.module}.py": models_module(n, data, result),
        f"apps/worker/src/forgestack_worker/handlers/{n.module}.py": handler_module(n, result),
        f"tests/worker/handlers/test_{n.module}.py": handler_test_module(n, data),
    }
    changes: dict[str, Callable[[str], str]] = {
        edits.QUEUES: lambda t: edits.edit_queues(t, n),
        edits.CATALOG: lambda t: edits.edit_catalog(t, n, attempts, backoff),
        edits.REGISTRY: lambda t: edits.edit_registry(t, n),
        edits.ACCESS: lambda t: edits.edit_access(t, n, operator_only=operator_only),
        edits.KEDA: lambda t: edits.edit_keda(t, n),
        edits.HPA: lambda t: edits.edit_hpa(t, n),
    }
    if cron is not None:
        changes[edits.CRON] = lambda t: edit_cron(t, n, data, cron)
    for path in new_files:
        if (root / path).exists():
            raise Refusal(f"{path} already exists")
    out = dict(new_files)
    for path, change in changes.items():
        out[path] = change((root / path).read_text())
    return {path: _format(root, path, text) for path, text in out.items()}


def _refuse_local_changes(root: Path, paths: list[str]) -> None:
    done = subprocess.run(
        ["git", "status", "--porcelain", "--", *paths],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise Refusal(f"git status failed in {root}: {done.stderr.strip()}")
    changed = [line[3:] for line in done.stdout.splitlines() if not line.startswith("??")]
    if changed:
        raise Refusal(f"local changes in {', '.join(changed)}: commit or stash them first")


def _existing_queues(root: Path) -> set[str]:
    return set(re.findall(r' = "([a-z0-9-]+)"', (root / edits.QUEUES).read_text()))


def _diff(root: Path, path: str, new: str) -> str:
    target = root / path
    old = target.read_text() if target.exists() else ""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}"
        )
    )


@click.command("new-job")
@click.argument("name")
@click.option("--field", "fields", multiple=True, help="A payload field, name:type; repeatable.")
@click.option("--result", "results", multiple=True, help="A result field, name:type; repeatable.")
@click.option("--attempts", default=3, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--backoff", default="exponential:1000", show_default=True, help="fixed|exponential[:ms]"
)
@click.option(
    "--cron",
    "cron_expr",
    help='Also add a cron producer: "minute hour day month weekday", e.g. "*/15 9-17 * * 1-5".',
)
@click.option(
    "--cron-only", is_flag=True, help="With --cron: no API producer (only the operator may add)."
)
@click.option("--dry-run", is_flag=True, help="Print the planned edits as a diff; write nothing.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=".", hidden=True)
def new_job(
    name: str,
    fields: tuple[str, ...],
    results: tuple[str, ...],
    attempts: int,
    backoff: str,
    cron_expr: str | None,
    cron_only: bool,
    dry_run: bool,
    root: Path,
) -> None:
    """Add the queue NAME (kebab-case): models, catalog entry, handler, registration, access
    rule, KEDA trigger and tests. Types: str, int, float, bool, datetime."""
    try:
        if not NAME.match(name):
            raise Refusal(f"{name!r} is not a kebab-case name (like send-sms)")
        if name in _existing_queues(root):
            raise Refusal(f"queue {name!r} already exists in {edits.QUEUES}")
        if cron_only and cron_expr is None:
            raise Refusal("--cron-only needs --cron")
        n = JobNames(name)
        files = plan(
            root,
            n,
            _fields(fields, DEFAULT_FIELDS),
            _fields(results, DEFAULT_RESULT),
            attempts,
            _backoff(backoff),
            cron_expr,
            operator_only=cron_only,
        )
        _refuse_local_changes(root, list(files))
    except (Refusal, edits.AnchorError) as exc:
        click.echo(f"forgestack new-job: {exc}", err=True)
        raise SystemExit(2) from None
    for path, text in files.items():
        if dry_run:
            click.echo(_diff(root, path, text), nl=False)
        else:
            (root / path).write_text(text)
            click.echo(f"wrote {path}")
    if not dry_run:
        click.echo(
            f"next: fill in _process in the handler; enqueue with queues.add({n.const}, ...)"
        )
