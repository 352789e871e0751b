"""The README's `forgestack dev` banner and key story against a real `forgestack dev`: the same
lines in the same order, and an admin key kept (mode 0600) and printed again after a restart."""

import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.devrun import DevRun, dev_command, dev_env
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
README_DATA_DIR = "/home/you/forgestack/.forgestack"
README_KEY = "q3J0..."
LINE = re.compile(r"^  (\S.*?)\s{2,}(\S.*)$")


def _readme_banner() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```text\nForgeStack is running\n", 1)[1].split("```", 1)[0]
    return ["ForgeStack is running", *block.rstrip("\n").splitlines()]


def _banner(run: DevRun) -> list[str]:
    run.wait_for(r"^Press Ctrl-C to stop")
    start = run.lines.index("ForgeStack is running")
    end = run.lines.index("Press Ctrl-C to stop.", start)
    return run.lines[start : end + 1]


def _rows(banner: list[str]) -> dict[str, str]:
    rows = {}
    for line in banner[1:-1]:
        match = LINE.match(line)
        assert match, f"not a banner row: {line!r}"
        rows[match[1]] = match[2]
    return rows


@pytest.fixture
def started() -> Iterator[list[DevRun]]:
    runs: list[DevRun] = []
    yield runs
    for run in runs:
        if run.proc.poll() is None:
            run.kill_everything([])


def _start_and_stop(started: list[DevRun], tmp_path: Path) -> list[str]:
    env = dev_env(tmp_path / "data", free_port())
    run = DevRun.start(dev_command(via_uv=False), env, cwd=tmp_path)
    started.append(run)
    banner = _banner(run)
    run.ctrl_c()
    assert run.wait(timeout=20) == 0, run.output
    return banner


def test_the_readme_banner_and_key_story_match_what_runs(
    started: list[DevRun], tmp_path: Path
) -> None:
    readme = _readme_banner()
    first = _start_and_stop(started, tmp_path)
    assert (first[0], first[-1]) == (readme[0], readme[-1])
    readme_rows, rows = _rows(readme), _rows(first)
    assert list(rows) == list(readme_rows)

    key_file = tmp_path / "data" / "admin-api-key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    expected = readme_rows["Admin API key"].replace(README_KEY, key)
    assert rows["Admin API key"] == expected.replace(README_DATA_DIR, str(tmp_path / "data"))

    again = _rows(_start_and_stop(started, tmp_path))
    assert again["Admin API key"] == rows["Admin API key"].replace("new, kept", "kept")
    assert key_file.read_text().strip() == key


def test_the_readme_examples_use_the_key_the_banner_names() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "$KEY in the README's examples" in _rows(_readme_banner())["Admin API key"]
    assert re.search(r"^KEY=\.\.\.\s+# the Admin API key `forgestack dev` printed", readme, re.M)
    examples = readme.split("### Talking to the API", 1)[1].split("## Job semantics", 1)[0]
    assert examples.count('Bearer $KEY"') >= 10
