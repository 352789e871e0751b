"""What `forgestack new-job ARGS` would write, computed from the repository as it is (the
generator's own plan, formatted by ruff), so a page can show generated code that a test keeps
equal to what the command writes today.

The plan runs on a scratch copy of the files the generator edits: the page's example queue may
exist already (someone followed the page), and the new modules are still what the generator
would write; registry entries are compared as excerpts, which an earlier copy does not disturb."""

import shlex
import shutil
import tempfile
from functools import cache
from pathlib import Path

from forgestack_cli import job_edits
from forgestack_cli.job_templates import DEFAULT_FIELDS, DEFAULT_RESULT, JobNames
from forgestack_cli.new_job import _backoff, _fields, new_job, plan

ROOT = Path(__file__).resolve().parents[2]
READ_BY_THE_GENERATOR = (
    "pyproject.toml",  # ruff's settings, for the formatting the generator applies
    job_edits.QUEUES,
    job_edits.CATALOG,
    job_edits.REGISTRY,
    job_edits.ACCESS,
    job_edits.KEDA,
    job_edits.HPA,
    job_edits.CRON,
)


@cache
def planned_files(command: str) -> dict[str, str]:
    """`command` is `new-job NAME [options]`, as on the command line; path -> whole new text."""
    words = shlex.split(command)
    assert words[:1] == ["new-job"], f"{command!r} is not a new-job command"
    params = new_job.make_context("new-job", words[1:]).params
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for path in READ_BY_THE_GENERATOR:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / path, root / path)
        return plan(
            root,
            JobNames(params["name"]),
            _fields(params["fields"], DEFAULT_FIELDS),
            _fields(params["results"], DEFAULT_RESULT),
            params["attempts"],
            _backoff(params["backoff"]),
            params["cron_expr"],
            operator_only=params["cron_only"],
        )
