"""The README's configuration table and `.env.example` are generated from the settings model;
these fail when either drifts (fix: `uv run python -m forgestack_shared.settings_doc --write`)."""

from pathlib import Path

from forgestack_shared.settings import Settings
from forgestack_shared.settings_doc import env_example, readme_with_table, settings_table

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "run `uv run python -m forgestack_shared.settings_doc --write`"


def test_the_readme_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme_with_table(readme) == readme, REGENERATE


def test_env_example_is_the_generated_one() -> None:
    assert (ROOT / ".env.example").read_text() == env_example(), REGENERATE


def test_the_table_has_one_row_per_setting_with_a_meaning() -> None:
    rows = settings_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == [n.upper() for n in Settings.model_fields]
    assert all(not row.endswith("| None |") for row in rows), "a setting lacks a description"


def test_env_example_loads_as_the_defaults(tmp_path: Path) -> None:
    """Every line is a comment: copying it to .env changes nothing until a line is uncommented."""
    env_file = tmp_path / ".env"
    env_file.write_text(env_example())
    assert Settings(_env_file=env_file) == Settings(_env_file=None)  # type: ignore[call-arg]
    names = [line.split("=")[0][2:] for line in env_example().splitlines() if "=" in line[:40]]
    assert set(names) >= {n.upper() for n in Settings.model_fields}
