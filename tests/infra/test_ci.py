"""CI as the issue asks: GitHub workflow valid per its schema, uv through astral-sh/setup-uv with
its cache, Python 3.11-3.13, a fast lane; pre-commit runs ruff and mypy; .ci/run the README's
test command."""

from typing import Any

import yaml

from tests.infra.manifests import ROOT, validate, vendored_schema

WORKFLOW: dict[str, Any] = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
# PyYAML reads YAML 1.1, where the key `on` is the boolean true; GitHub reads it as "on".
WORKFLOW["on"] = WORKFLOW.pop(True)
VERSIONS = ["3.11", "3.12", "3.13"]


def _steps(job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = WORKFLOW["jobs"][job]["steps"]
    return steps


def _runs(job: str) -> list[str]:
    return [step["run"] for step in _steps(job) if "run" in step]


def test_the_workflow_follows_githubs_schema() -> None:
    validate(WORKFLOW, vendored_schema("github-workflows"))


def test_every_job_uses_setup_uv_with_its_cache_and_the_lock() -> None:
    for job in WORKFLOW["jobs"]:
        setup = [s for s in _steps(job) if s.get("uses", "").startswith("astral-sh/setup-uv@")]
        assert len(setup) == 1, job
        assert setup[0]["with"]["enable-cache"] is True
        assert setup[0]["with"]["cache-dependency-glob"] == "uv.lock"
        assert "uv sync --locked" in _runs(job), job


def test_tests_run_on_python_3_11_to_3_13() -> None:
    for job in ("fast", "tests"):
        assert WORKFLOW["jobs"][job]["strategy"]["matrix"]["python"] == VERSIONS


def test_the_fast_lane_and_the_full_run() -> None:
    assert 'uv run pytest -m "not slow"' in _runs("fast")
    assert "services" not in WORKFLOW["jobs"]["fast"]
    assert "uv run pytest" in _runs("tests")
    assert {"redis", "postgres"} <= set(WORKFLOW["jobs"]["tests"]["services"])
    checks = _runs("checks")
    assert {"uv run ruff check .", "uv run ruff format --check .", "uv run mypy"} <= set(checks)


def test_pre_commit_runs_ruff_and_mypy() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff-check", "ruff-format", "mypy"} <= set(hooks)
    assert hooks["mypy"]["pass_filenames"] is False
    assert all("uv run --locked" in hook["entry"] for hook in hooks.values())


def test_ci_run_ends_with_the_readme_test_command_and_can_install_redis() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    lines = [ln.strip() for ln in script.splitlines() if ln.strip()]
    assert lines[-1] == "uv run pytest"
    assert "apt-get install -y -qq redis-server" in script
