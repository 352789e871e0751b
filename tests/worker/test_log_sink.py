"""The worker imports loguru without its default stderr sink, and leaves the environment as it was."""

import os
import subprocess
import sys

import pytest
from forgestack_shared.settings import Settings
from forgestack_worker.log_sink import AUTOINIT, default_sink_skipped

# The id loguru gives the next sink counts every sink ever added in the process: the default one
# (0) and configure_logging's would make it 2; configure_logging's alone, 1.
NEXT_SINK = """
import os, worker
from loguru import logger
print(logger.add(lambda message: None), os.environ.get("LOGURU_AUTOINIT"))
"""


def test_import_worker_adds_only_the_configured_sink(settings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if k != AUTOINIT}
    proc = subprocess.run(
        [sys.executable, "-c", NEXT_SINK],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "1 None"


def test_an_operator_value_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "loguru")
    monkeypatch.setenv(AUTOINIT, "yes")
    with default_sink_skipped():
        assert os.environ[AUTOINIT] == "yes"
    assert os.environ[AUTOINIT] == "yes"


def test_the_environment_is_restored_after_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "loguru")
    monkeypatch.delenv(AUTOINIT, raising=False)
    seen: list[str | None] = []

    def failing_import() -> None:
        seen.append(os.environ.get(AUTOINIT))
        raise ImportError("no such module")

    with pytest.raises(ImportError), default_sink_skipped():
        failing_import()
    assert seen == ["false"]
    assert AUTOINIT not in os.environ
