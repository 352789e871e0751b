"""The API and worker Dockerfiles without a Docker engine: multi-stage from the lock, non-root,
with a health check, copying only paths that exist, and their `uv sync` lines install a working
environment when run here exactly as written."""

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.infra.manifests import INFRA, ROOT, SETTINGS

DOCKERFILES = {
    "api": INFRA / "docker" / "api.Dockerfile",
    "worker": INFRA / "docker" / "worker.Dockerfile",
}
BUILD_ENV = {
    "PATH",
    "PYTHONUNBUFFERED",
    "UV_COMPILE_BYTECODE",
    "UV_LINK_MODE",
    "UV_PYTHON_DOWNLOADS",
}
ENTRY = {"api": ("api", "forgestack"), "worker": ("arq",)}


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    rows = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    return [(row.split(None, 1)[0].upper(), row.split(None, 1)[1]) for row in rows]


def _uv_syncs(path: Path) -> list[list[str]]:
    commands = []
    for op, args in _instructions(path):
        if op == "RUN" and "uv sync" in args:
            words = shlex.split(args)
            commands.append(words[words.index("uv") :])
    return commands


@pytest.mark.parametrize("image", list(DOCKERFILES))
def test_multi_stage_from_the_lock_as_non_root_with_a_health_check(image: str) -> None:
    instructions = _instructions(DOCKERFILES[image])
    ops = [op for op, _ in instructions]
    assert ops.count("FROM") >= 2
    assert any(op == "COPY" and "uv.lock" in args for op, args in instructions)
    syncs = _uv_syncs(DOCKERFILES[image])
    assert syncs and all("--locked" in s and "--no-dev" in s for s in syncs)
    user = [args for op, args in instructions if op == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in ops
    runtime = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM") :]
    assert any(op == "COPY" and "--from=build" in args for op, args in runtime)


@pytest.mark.parametrize("image", list(DOCKERFILES))
def test_copied_paths_exist_and_env_names_are_settings(image: str) -> None:
    for op, args in _instructions(DOCKERFILES[image]):
        if op == "COPY" and "--from" not in args:
            *sources, _dest = args.split()
            for source in sources:
                assert (ROOT / source).exists(), source
        if op == "ENV":
            names = {pair.split("=")[0] for pair in args.split()}
            assert names <= SETTINGS | BUILD_ENV, names - SETTINGS - BUILD_ENV


def test_the_dockerfiles_copy_every_workspace_member() -> None:
    """`uv sync --locked` needs every member's pyproject to check the lock."""
    members = {p.parent.relative_to(ROOT) for p in ROOT.glob("*/*/pyproject.toml")}
    for path in DOCKERFILES.values():
        copied = {
            Path(args.split()[0]).parent
            for op, args in _instructions(path)
            if op == "COPY" and args.split()[0].endswith("pyproject.toml")
        }
        assert members <= copied, path.name


@pytest.mark.parametrize("image", list(DOCKERFILES))
def test_the_uv_sync_lines_install_the_entry_points(image: str, tmp_path: Path) -> None:
    """Run here as the image runs them (from the uv cache, offline), into a scratch venv."""
    env = os.environ | {"UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv"), "UV_OFFLINE": "1"}
    for command in _uv_syncs(DOCKERFILES[image]):
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    scripts = {p.name for p in (tmp_path / "venv" / "bin").iterdir()}
    assert set(ENTRY[image]) <= scripts
    lib = next((tmp_path / "venv" / "lib").glob("python3*/site-packages"))
    assert (lib / "worker.py").is_file(), "arq imports `worker` from site-packages"
    # --no-editable: the runtime stage copies the venv alone, so nothing may point at sources.
    assert not [p for p in lib.glob("*.pth") if str(ROOT) in p.read_text()]
    assert not [d for d in ("pytest", "mypy", "ruff") if (lib / d).exists()], "dev tools"
