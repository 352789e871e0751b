"""Marked sections of bench/RESULTS.md: each bench script owns one `<!-- name:begin -->` ...
`<!-- name:end -->` block and replaces only that, so one script's run never erases another's
figures (run.py rewrites its own table and carries every other section over)."""

import re
from pathlib import Path

SECTION = re.compile(r"<!-- ([a-z0-9-]+):begin -->.*?<!-- \1:end -->\n?", re.S)


def sections(text: str) -> dict[str, str]:
    """Every marked section of `text`, by name, as written (markers included)."""
    return {m.group(1): m.group(0).rstrip("\n") + "\n" for m in SECTION.finditer(text)}


def write_section(path: Path, text: str) -> None:
    """Replaces the section `text` is (by its begin marker's name) or appends it; a function as
    the replacement, so backslashes in the figures are not read as group references."""
    found = SECTION.search(text)
    assert found, "a section starts with its <!-- name:begin --> marker"
    name = found.group(1)
    current = path.read_text() if path.exists() else ""
    own = re.compile(
        re.escape(f"<!-- {name}:begin -->") + ".*?" + re.escape(f"<!-- {name}:end -->") + "\n?",
        re.S,
    )
    body = text.rstrip("\n") + "\n"
    if own.search(current):
        path.write_text(own.sub(lambda _: body, current, count=1))
    else:
        path.write_text(current.rstrip() + "\n\n" + body)


def write_keeping_sections(path: Path, text: str) -> None:
    """Writes `text` as the whole file, then carries over each section of the old file that
    `text` does not itself contain."""
    old = sections(path.read_text()) if path.exists() else {}
    path.write_text(text)
    for name, section in old.items():
        if name not in sections(text):
            write_section(path, section)
