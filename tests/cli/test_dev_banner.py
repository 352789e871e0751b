"""The README's `forgestack dev` banner and key story against a real `forgestack dev`: the same
lines in the same order, every one equal once this run's ports, pids, paths and keys are
replaced by the README's example values, and an admin key kept (mode 0600) and printed again
after a restart."""

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
README_ORG_KEY = "fsk_6871d3f7_E2kJ..."
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


def _as_in_readme(banner: list[str], data_dir: Path, key: str, api_port: int) -> list[str]:
    """This run's variable parts replaced by the README's examples."""
    readme = _rows(_readme_banner())
    text = "\n".join(banner).replace(str(data_dir), README_DATA_DIR).replace(key, README_KEY)
    text = re.sub(r"redis://127\.0\.0\.1:\d+/0 \(embedded, pid \d+\)", readme["Redis"], text)
    mail_url = readme["Mail catcher"].split(",", 1)[0]
    text = re.sub(r"smtp://127\.0\.0\.1:\d+(?=,)", mail_url, text)
    text = text.replace(f"127.0.0.1:{api_port}", "127.0.0.1:8000")
    text = re.sub(r"fsk_[0-9a-f]{8}_\S+", README_ORG_KEY, text)
    return text.splitlines()


def _start_and_stop(started: list[DevRun], tmp_path: Path, api_port: int) -> list[str]:
    env = dev_env(tmp_path / "data", api_port)
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
    api_port = free_port()
    first = _start_and_stop(started, tmp_path, api_port)
    assert (first[0], first[-1]) == (readme[0], readme[-1])
    readme_rows, rows = _rows(readme), _rows(first)
    assert list(rows) == list(readme_rows)

    key_file = tmp_path / "data" / "admin-api-key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert _as_in_readme(first, tmp_path / "data", key, api_port) == readme

    again = _rows(_start_and_stop(started, tmp_path, api_port))
    assert again["Admin API key"] == rows["Admin API key"].replace("new, kept", "kept")
    assert key_file.read_text().strip() == key
