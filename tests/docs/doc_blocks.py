"""Reads a Markdown page's fenced code blocks and the source each one claims, so a test can
compare them: a block is a copy of repository text, never a paraphrase that drifts.

A block names its source in an HTML comment on the line before its fence:

    <!-- from: path/to/file.py -->              the whole file
    <!-- from: path/to/file.py#NAME -->         a top-level def, class or assignment (or
                                                Class.method), with the comment lines just
                                                above it and an assignment's docstring below
    <!-- from: path/to/file.yaml#excerpt -->    consecutive lines of the file, verbatim
    <!-- generated: new-job ARGS -> PATH#NAME -->  the same selectors, applied to what
                                                `forgestack new-job ARGS` would write to PATH
"""

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
SOURCE = re.compile(r"<!--\s*(from|generated):\s*(.+?)\s*-->\s*\n$")


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int
    """1-based line of the opening fence, for failure messages."""
    kind: str | None
    """`from`, `generated`, or None when no source comment precedes the block."""
    source: str | None

    @property
    def where(self) -> str:
        return (
            f"line {self.line} ({self.kind}: {self.source})" if self.kind else f"line {self.line}"
        )


def blocks(markdown: str) -> list[Block]:
    found = []
    for match in FENCE.finditer(markdown):
        before = markdown[: match.start()]
        source = SOURCE.search(before[-400:])
        kind, claimed = (source.group(1), source.group(2)) if source else (None, None)
        found.append(
            Block(
                language=match.group(1),
                text=match.group(2),
                line=before.count("\n") + 1,
                kind=kind,
                source=claimed,
            )
        )
    return found


class RegionError(AssertionError):
    """The claimed region does not exist in the source."""


def _leading_comments(lines: list[str], first: int) -> int:
    """The index of the first line of the comment block right above line index `first`."""
    while first > 0 and lines[first - 1].lstrip().startswith("#"):
        first -= 1
    return first


def _named(body: list[ast.stmt], name: str) -> tuple[ast.stmt, ast.stmt | None] | None:
    """The statement defining `name` and the one after it (an attribute docstring, maybe)."""
    for index, node in enumerate(body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = {node.name}
        elif isinstance(node, ast.Assign):
            names = {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names = {node.target.id}
        else:
            continue
        if name in names:
            return node, body[index + 1] if index + 1 < len(body) else None
    return None


def python_region(source: str, name: str) -> str:
    """The source text of `name` (`NAME` or `Class.NAME`), dedented."""
    tree = ast.parse(source)
    body: list[ast.stmt] = tree.body
    *outer, last = name.split(".")
    for part in outer:
        found = _named(body, part)
        if found is None or not isinstance(found[0], ast.ClassDef):
            raise RegionError(f"no class {part!r}")
        body = found[0].body
    found = _named(body, last)
    if found is None:
        raise RegionError(f"no top-level definition of {name!r}")
    node, after = found
    start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))]) - 1
    end = node.end_lineno or node.lineno
    is_docstring = (
        isinstance(node, ast.Assign | ast.AnnAssign)
        and isinstance(after, ast.Expr)
        and isinstance(after.value, ast.Constant)
        and isinstance(after.value.value, str)
    )
    if is_docstring and after is not None:
        end = after.end_lineno or end
    lines = source.splitlines(keepends=True)
    start = _leading_comments(lines, start)
    return textwrap.dedent("".join(lines[start:end]))


def is_excerpt(text: str, source: str) -> bool:
    """True when `text`'s lines are consecutive whole lines of `source`."""
    wanted = text.splitlines()
    have = source.splitlines()
    return bool(wanted) and any(
        have[i : i + len(wanted)] == wanted for i in range(len(have) - len(wanted) + 1)
    )


def check_region(block: Block, path: str, source: str, selector: str | None) -> None:
    """Raises AssertionError naming the block when it is not the claimed region of `source`."""
    if selector is None:
        expected = source
    elif selector == "excerpt":
        assert is_excerpt(block.text, source), (
            f"block at {block.where} is not a verbatim excerpt of {path}"
        )
        return
    else:
        try:
            expected = python_region(source, selector)
        except RegionError as exc:
            raise AssertionError(f"block at {block.where}: {path}: {exc}") from None
    assert block.text == expected, (
        f"block at {block.where} differs from {path}"
        + (f"#{selector}" if selector else "")
        + "; copy it again from the source:\n"
        + expected
    )


def split_source(claimed: str) -> tuple[str, str | None]:
    path, _, selector = claimed.partition("#")
    return path.strip(), selector.strip() or None


def read_repo_file(root: Path, path: str) -> str:
    target = (root / path).resolve()
    assert target.is_relative_to(root), f"{path} is outside the repository"
    assert target.is_file(), f"{path} does not exist"
    return target.read_text()
