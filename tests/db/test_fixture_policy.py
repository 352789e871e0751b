"""The database fixtures' promise: an unreachable PostgreSQL skips the tests that need it, with the
reason, except under CI=true, where it fails the run (a CI without its database proves nothing)."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
ONE_PG_TEST = "tests/db/test_rls.py::test_a_tenant_sees_only_its_own_rows"


def _run(ci: str) -> subprocess.CompletedProcess[str]:
    closed_port = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    env = os.environ | {"TEST_POSTGRES_URL": closed_port, "CI": ci}
    return subprocess.run(
        [sys.executable, "-m", "pytest", ONE_PG_TEST, "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_outside_ci_an_unreachable_database_skips_with_the_reason() -> None:
    done = _run("false")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout and "PostgreSQL unreachable" in done.stdout


def test_in_ci_an_unreachable_database_fails() -> None:
    done = _run("true")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 error" in done.stdout and "CI=true" in done.stdout
