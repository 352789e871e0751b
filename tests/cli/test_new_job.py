"""`forgestack new-job`: its refusals, its dry run, and (slow) a generated job in a copy of the
repository passing ruff, ruff format, mypy strict, its own tests and the checklist unedited."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from forgestack_cli.job_cron import CronError, cron_arguments
from forgestack_cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
CRON_PY = "apps/worker/src/forgestack_worker/cron.py"
SRC_DIRS = [*sorted((ROOT / "apps").glob("*/src")), *sorted((ROOT / "packages").glob("*/src"))]


def _clone(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(copy)], check=True)
    return copy


def _run(root: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["new-job", *args, "--root", str(root)])
    return result.exit_code, result.stdout, result.stderr


def _status(root: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.parametrize("name", ["SendSms", "send_sms", "send--sms", "sms-", "9sms", "send:sms"])
def test_an_invalid_name_is_refused_in_one_line(name: str) -> None:
    code, out, err = _run(ROOT, name)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "kebab-case" in err


def test_an_existing_queue_is_refused() -> None:
    code, _, err = _run(ROOT, "audit-logs")
    assert code == 2
    assert "queue 'audit-logs' already exists" in err


@pytest.mark.parametrize(
    ("option", "complaint"),
    [
        (["--field", "phone"], "is not name:type"),
        (["--field", "phone:bytes"], "is not name:type"),
        (["--field", "a:str", "--field", "a:int"], "named twice"),
        (["--backoff", "linear"], "fixed|exponential"),
    ],
)
def test_bad_options_are_refused(option: list[str], complaint: str) -> None:
    code, _, err = _run(ROOT, "send-sms", *option)
    assert code == 2
    assert complaint in err


def test_a_target_with_local_changes_is_refused_and_nothing_written(tmp_path: Path) -> None:
    repo = _clone(tmp_path)
    access = repo / "apps/api/src/forgestack_api/access.py"
    access.write_text(access.read_text() + "# local edit\n")
    code, _, err = _run(repo, "send-sms")
    assert code == 2
    assert "local changes in apps/api/src/forgestack_api/access.py" in err
    assert _status(repo).splitlines() == [" M apps/api/src/forgestack_api/access.py"]


def test_dry_run_prints_every_edit_and_writes_nothing(tmp_path: Path) -> None:
    repo = _clone(tmp_path)
    code, out, _ = _run(repo, "send-sms", "--field", "phone:str", "--dry-run")
    assert code == 0
    assert _status(repo) == ""
    for path in [
        "packages/shared/src/forgestack_shared/queues.py",
        "packages/shared/src/forgestack_shared/catalog.py",
        "packages/shared/src/forgestack_shared/jobs/send_sms.py",
        "apps/worker/src/forgestack_worker/handlers/send_sms.py",
        "apps/worker/src/forgestack_worker/registry.py",
        "apps/api/src/forgestack_api/access.py",
        "infra/k8s/base/keda-scaledobject.yaml",
        "tests/worker/handlers/test_send_sms.py",
    ]:
        assert f"+++ b/{path}" in out
    assert '+    SEND_SMS = "send-sms"' in out
    assert "+    phone: str" in out


def test_a_cron_expression_becomes_arq_arguments() -> None:
    assert cron_arguments("*/15 9-17 * * 1-5") == {
        "minute": {0, 15, 30, 45},
        "hour": set(range(9, 18)),
        "weekday": {0, 1, 2, 3, 4},
    }
    assert cron_arguments("30 3 1,15 * 0") == {
        "minute": {30},
        "hour": {3},
        "day": {1, 15},
        "weekday": {6},
    }
    assert cron_arguments("* * * * *") == {}


@pytest.mark.parametrize(
    "expr", ["* * * *", "60 * * * *", "*/0 * * * *", "a * * * *", "5-1 * * * *"]
)
def test_a_bad_cron_expression_is_refused(expr: str) -> None:
    with pytest.raises(CronError):
        cron_arguments(expr)
    code, _, err = _run(ROOT, "send-sms", "--cron", expr)
    assert code == 2
    assert "--cron" in err


def test_cron_only_needs_cron() -> None:
    code, _, err = _run(ROOT, "send-sms", "--cron-only")
    assert code == 2
    assert "--cron-only needs --cron" in err


def test_cron_adds_a_producer_and_cron_only_closes_the_api(tmp_path: Path) -> None:
    repo = _clone(tmp_path)
    code, out, err = _run(repo, "send-sms", "--cron", "0 3 * * *", "--cron-only", "--dry-run")
    assert code == 0, err
    assert "+async def enqueue_send_sms(ctx: dict[str, Any]) -> str:" in out
    assert "+        minute={0}," in out or "minute={0}, hour={3}" in out
    assert "QueueName.SEND_SMS: QueueAccess(enqueue=Role.OPERATOR, read=Role.OWNER)" in out


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_generated_job_passes_every_check_unedited(tmp_path: Path) -> None:
    repo = _clone(tmp_path)
    code, out, err = _run(
        repo,
        "send-sms",
        *("--field", "phone:str", "--field", "sent_at:datetime", "--field", "retries:int"),
        *("--result", "sid:str", "--result", "ok:bool", "--attempts", "4"),
        *("--backoff", "fixed:2000", "--cron", "*/15 9-17 * * 1-5"),
    )
    assert code == 0, err
    assert "wrote tests/worker/handlers/test_send_sms.py" in out
    assert 'name="enqueue-send-sms"' in (repo / CRON_PY).read_text()
    # The copy's sources, not this checkout's, on the path of every tool run there.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(repo / d.relative_to(ROOT)) for d in SRC_DIRS),
    }
    checks = [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy", "--cache-dir", str(tmp_path / "mypy-cache")],
        [
            "pytest", "-q", "-p", "no:cacheprovider",
            "tests/worker/handlers/test_send_sms.py",
            "tests/test_job_checklist.py",
            "tests/api/test_access.py",
            "tests/infra/test_kubernetes.py",
        ],
    ]  # fmt: skip
    for check in checks:
        done = subprocess.run(
            [sys.executable, "-m", *check], cwd=repo, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"{check}:\n{done.stdout}\n{done.stderr}"
    again, _, err = _run(repo, "send-sms")
    assert again == 2
    assert "already exists" in err
