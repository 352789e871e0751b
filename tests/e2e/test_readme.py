"""The README is the newcomer's contract: its commands, table and tree must match the repository."""

import re
from pathlib import Path

from forgestack_shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_two_commands_open_the_readme() -> None:
    first_block = README.split("```")[1]
    assert "uv run forgestack dev" in first_block
    assert "uv run pytest" in first_block


def test_ci_runs_the_readme_test_command() -> None:
    lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln.strip()]
    assert lines[-1] == "uv run pytest"


def test_every_setting_has_a_row_in_the_configuration_table() -> None:
    rows = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", README, flags=re.MULTILINE))
    names = {name.upper() for name in Settings.model_fields}
    assert names - rows == set(), "settings missing from the README's configuration table"
    assert rows - names == set(), "README rows for settings that do not exist"


def test_every_folder_of_the_layout_tree_exists() -> None:
    """Indented lines are relative to the top-level folder above them (or to the root)."""
    tree = README.split("## Layout")[1].split("```text")[1].split("```")[0]
    top = ROOT
    checked = 0
    for line in tree.splitlines():
        if not line.strip():
            continue
        path = line.split()[0]
        nested = line.startswith(" ")
        if not nested:
            top = ROOT / path
        if path.endswith("/"):
            candidates = [top / path, ROOT / path] if nested else [ROOT / path]
            assert any(c.is_dir() for c in candidates), f"{path} in the README's tree is missing"
            checked += 1
    assert checked >= 10
