"""scripts.py's sources: each script carries the prelude's parts it uses, and only those (Redis
makes every `local function` of a script's text anew on each call)."""

import re

import pytest
from forgestack_queue import scripts
from forgestack_queue.scripts import (
    COMPOSED,
    LIBRARIES,
    SCRIPT_NAMES,
    _prelude_parts,
    _read,
    _source,
)

SCRIPTS = [*SCRIPT_NAMES, "arq_take", "arq_sync"]


def test_the_prelude_is_cut_only_where_a_top_level_local_starts() -> None:
    """What `_prelude_parts` relies on: at the left margin only locals, `end` and comments."""
    for line in _read("_prelude").splitlines():
        if line and not line[0].isspace():
            assert line.startswith(("local ", "end", "--")), line
    assert "".join(part for _, part in _prelude_parts()) == _read("_prelude")


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_prelude_name_a_script_uses_is_defined_in_it(name: str) -> None:
    """Its code, comments left out: a comment may name a part defined after it, which code
    cannot use (a name not yet declared local is a global, refused by Redis)."""
    source = _source(name)
    tokens = set(re.findall(r"[A-Za-z_]\w*", re.sub(r"--[^\n]*", "", source)))
    for names, part in _prelude_parts():
        if names & tokens:
            assert part in source, f"{name} uses {sorted(names & tokens)} without its definition"


def test_an_add_carries_none_of_the_claims_and_finishes_helpers() -> None:
    source = _source("add_followed")
    assert "local function add_jobs" in source and "local function fair_score" in source
    for unused in ("owner_may_start", "trim_finished", "fail_cancelled", "unpark_freed"):
        assert f"local function {unused}" not in source


def test_libraries_and_parts_are_files_of_the_package() -> None:
    for name in {*LIBRARIES, *COMPOSED}:
        for piece in (*LIBRARIES.get(name, ()), *COMPOSED.get(name, ())):
            assert _read(piece)
    assert scripts.prelude_for("") == ""
