"""Another git revision's code for a bench's baseline: its sources extracted into a temporary
directory, for worker processes to import ahead of this tree's editable installs."""

import contextlib
import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path


def commit_of(repo: Path, rev: str) -> tuple[str, str]:
    """The full commit `rev` names now (a branch may move during a run) and its subject."""
    line = subprocess.run(
        ["git", "log", "-1", "--format=%H %s", rev],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    commit, _, subject = line.partition(" ")
    return commit, subject


@contextlib.contextmanager
def sources_at(repo: Path, rev: str, paths: Sequence[str]) -> Iterator[Path]:
    """`paths` (relative to `repo`) as of `rev`, under the yielded directory until exit."""
    with tempfile.TemporaryDirectory(prefix="fsbench-base-") as tmp:
        archive = subprocess.run(
            ["git", "archive", rev, *paths], cwd=repo, check=True, capture_output=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp)
