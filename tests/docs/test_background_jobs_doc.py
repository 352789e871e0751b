"""docs/patterns/background-jobs.md cannot drift: every code block equals the repository text it
names (or what `forgestack new-job` would write), every command parses, every path exists, and
its tables of options, queue defaults and checklist items are the code's."""

import json
import re
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import annotated_types
import pytest
from forgestack_cli.job_templates import DEFAULT_FIELDS, DEFAULT_RESULT, TYPES
from forgestack_cli.new_job import new_job
from forgestack_queue.options import Backoff, JobOptions, KeepJobs, Retention
from forgestack_shared.catalog import CATALOG, QueueSpec
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from tests.checklist import Snapshot, missing_items
from tests.docs.doc_blocks import (
    Block,
    RegionError,
    blocks,
    check_region,
    is_excerpt,
    python_region,
    read_repo_file,
    split_source,
)
from tests.docs.doc_commands import check_command, shell_commands
from tests.docs.doc_generated import planned_files
from tests.docs.doc_routes import curl_call, route_for

ROOT = Path(__file__).resolve().parents[2]
PAGE = "docs/patterns/background-jobs.md"
TEXT = (ROOT / PAGE).read_text()
BLOCKS = blocks(TEXT)
SHELL = {"sh", "bash"}
SOURCED = [b for b in BLOCKS if b.language not in SHELL]
INLINE = re.compile(r"`([^`\n]+)`")


def _source(block: Block) -> tuple[str, str, str | None]:
    """(path, the text the block is compared with, selector)."""
    assert block.source is not None
    if block.kind == "from":
        path, selector = split_source(block.source)
        return path, read_repo_file(ROOT, path), selector
    command, arrow, target = block.source.partition("->")
    assert arrow, f"block at {block.where}: write `generated: new-job ARGS -> PATH[#NAME]`"
    path, selector = split_source(target)
    files = planned_files(command.strip())
    assert path in files, f"block at {block.where}: `{command.strip()}` writes no {path}"
    return path, files[path], selector


@pytest.mark.parametrize("block", SOURCED, ids=lambda b: f"line-{b.line}")
def test_each_code_block_is_the_text_it_names(block: Block) -> None:
    assert block.kind is not None, (
        f"{PAGE}: the code block at line {block.line} names no source; put "
        "<!-- from: path#NAME --> (or #excerpt, or a whole file) on the line before its fence"
    )
    path, source, selector = _source(block)
    check_region(block, path, source, selector)


def test_most_blocks_are_checked_against_code() -> None:
    """A parser that found no blocks would pass every test above."""
    assert len(SOURCED) >= 20
    assert sum(b.kind == "generated" for b in SOURCED) >= 4
    assert all(b.language in SHELL for b in BLOCKS if b.kind is None)


def _commands() -> list[str]:
    return [cmd for b in BLOCKS if b.language in SHELL for cmd in shell_commands(b.text)]


def test_every_shell_command_is_real() -> None:
    programs = set()
    for command in _commands():
        call = curl_call(command)
        if call is not None:
            assert route_for(call.method, call.path), f"{command!r}: no such route"
            programs.add("curl")
        else:
            programs.add(check_command(command))
    assert {"forgestack", "pytest", "ruff", "mypy", "curl"} <= programs


def test_every_inline_command_is_real() -> None:
    inline = [c for c in INLINE.findall(TEXT) if c.startswith(("uv run ", "forgestack "))]
    assert len(inline) >= 3
    for command in inline:
        check_command(command, mention=True)


def test_every_repository_path_named_exists() -> None:
    paths = [
        c
        for c in INLINE.findall(TEXT)
        if "/" in c and not c.startswith("/") and re.fullmatch(r"[\w./-]+", c)
    ]
    assert len(paths) >= 12
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert missing == [], f"{PAGE} names paths that do not exist: {missing}"


def test_every_route_named_is_served() -> None:
    named = re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`?\s]*)(?:\?[^`]*)?`", TEXT)
    assert len(named) >= 3
    for method, path in named:
        assert route_for(method, path.replace("{", "<").replace("}", ">")), f"{method} {path}"


def test_the_readme_links_this_page() -> None:
    readme = (ROOT / "README.md").read_text()
    assert re.search(rf"\]\({re.escape(PAGE)}\)", readme), f"README.md does not link {PAGE}"


# The block checker is what every test above trusts: it must see drift.


def test_a_changed_definition_is_drift() -> None:
    source = 'X = 1\n"""Why X."""\n\n\n# Why f.\ndef f() -> int:\n    return 2\n'
    assert python_region(source, "X") == 'X = 1\n"""Why X."""\n'
    assert python_region(source, "f") == "# Why f.\ndef f() -> int:\n    return 2\n"
    block = Block("python", "def f() -> int:\n    return 3\n", 1, "from", "m.py#f")
    with pytest.raises(AssertionError, match=r"differs from m\.py#f"):
        check_region(block, "m.py", source, "f")
    with pytest.raises(RegionError):
        python_region(source, "g")


def test_an_excerpt_must_be_whole_consecutive_lines() -> None:
    source = "a: 1\nb: 2\nc: 3\n"
    assert is_excerpt("b: 2\nc: 3\n", source)
    assert not is_excerpt("a: 1\nc: 3\n", source)
    assert not is_excerpt("b: ", source)


# new-job's options


def _table_after(marker: str) -> list[list[str]]:
    section = TEXT.split(marker, 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        if not set("".join(cells)) <= {"-"}:
            rows.append(cells)
    return rows[1:]


def _plain(cell: str) -> str:
    return cell.replace("`", "").replace("\\|", "|")


def test_the_new_job_options_are_the_commands() -> None:
    rows = _table_after("uv run forgestack new-job --help")
    documented = {_plain(row[0]).split()[0]: _plain(row[1]) for row in rows}
    defaults = new_job.make_context("new-job", ["send-sms"]).params
    defaults |= {
        "name": None,
        "fields": ", ".join(f"{n}:{t}" for n, t in DEFAULT_FIELDS),
        "results": ", ".join(f"{n}:{t}" for n, t in DEFAULT_RESULT),
    }
    expected = {}
    for param in new_job.params:
        if getattr(param, "hidden", False) or param.name is None:
            continue
        name = param.opts[0] if param.param_type_name == "option" else param.human_readable_name
        value = defaults[param.name]
        expected[name] = "" if value in (None, False, ()) else str(value)
    assert documented == expected
    field_row = next(row for row in rows if row[0].startswith("`--field"))
    assert re.findall(r"`(\w+)`", field_row[2]) == list(TYPES)


# JobOptions


def _limits(metadata: list[Any]) -> list[float]:
    found: list[float] = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            found += _limits(item.metadata)
        elif isinstance(item, annotated_types.Ge):
            found.append(item.ge)  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.Gt):
            found.append(item.gt + 1)  # type: ignore[operator]
        elif isinstance(item, annotated_types.Le):
            found.append(item.le)  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.Lt):
            found.append(item.lt - 1)  # type: ignore[operator]
        elif isinstance(item, annotated_types.MinLen):
            found.append(item.min_length)
        elif isinstance(item, annotated_types.MaxLen):
            found.append(item.max_length)
    return found


def _bounds(annotation: Any) -> list[float]:
    """Every numeric bound in a type: its own, its union members', its nested models' fields."""
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        return _limits(metadata) + _bounds(base)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [n for f in annotation.model_fields.values() for n in _field_bounds(f)]
    return [n for arg in get_args(annotation) for n in _bounds(arg)]


def _field_bounds(field: FieldInfo) -> list[float]:
    return _limits(field.metadata) + _bounds(field.annotation)


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _descriptions(field: FieldInfo) -> str:
    nested = [a for a in get_args(field.annotation) if isinstance(a, type)] + [field.annotation]
    texts = [field.description or ""]
    for model in nested:
        if isinstance(model, type) and issubclass(model, BaseModel):
            texts += [f.description or "" for f in model.model_fields.values()]
    return " ".join(texts).lower()


def _default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump())
    return json.dumps(value)


def test_the_options_table_is_job_options() -> None:
    rows = {_plain(row[0]): row for row in _table_after("<!-- options-table")}
    fields = {name: f for name, f in JobOptions.model_fields.items() if name != "arq"}
    assert set(rows) == set(fields), "the options table's rows are JobOptions' fields"
    for name, field in fields.items():
        _, unit, bounds, default, _ = rows[name]
        for bound in _field_bounds(field):
            assert re.search(rf"(?<![\d,.]){re.escape(_number(bound))}(?![\d,])", bounds), (
                f"options table, {name}: the range should name {_number(bound)} (JobOptions)"
            )
        for pattern in (getattr(m, "pattern", None) for m in field.metadata):
            allowed = re.fullmatch(r"\^\[(.+)\]\+\$", pattern or "")
            assert pattern is None or (allowed and f"`{allowed[1]}`" in bounds), (
                f"options table, {name}: the range should name the characters of {pattern}"
            )
        assert _plain(default) == _default(field.default), f"options table, {name}: default"
        units = set(unit.split(", "))
        said = _descriptions(field)
        assert ("ms" in units) == bool(re.search(r"\bmilliseconds?\b", said)), f"{name}: unit"
        assert ("s" in units) == bool(re.search(r"\bseconds?\b", said)), f"{name}: unit"


def test_the_bounds_reader_sees_nested_and_union_bounds() -> None:
    keep = _bounds(Retention)
    assert {1_000_000, 315_360_000} <= set(keep)
    assert set(_bounds(Backoff)) >= {2_592_000_000, 100, 1.0}
    assert _bounds(KeepJobs) == _bounds(KeepJobs | None)


# The catalog


def _ms(ms: int) -> str:
    units = ((86_400_000, "d"), (3_600_000, "h"), (60_000, "min"), (1000, "s"))
    for size, name in units:
        if ms >= size and ms % size == 0:
            return f"{ms:,} ms ({ms // size} {name})"
    return f"{ms:,} ms"


def _backoff(backoff: Backoff | None) -> str:
    if backoff is None:
        return "none"
    if backoff.schedule:
        return "schedule " + ", ".join(_ms(ms) for ms in backoff.schedule)
    text = f"{backoff.type} from {_ms(backoff.delay)}"
    return text + (f", jitter {backoff.jitter:g}" if backoff.jitter else "")


def _keep(rule: Any) -> str:
    if isinstance(rule, KeepJobs):
        parts = [] if rule.age is None else [f"{rule.age:,} s"]
        return ", ".join(parts + ([] if rule.count is None else [f"newest {rule.count:,}"]))
    return json.dumps(rule)


def _catalog_row(spec: QueueSpec[Any, Any]) -> list[str]:
    d = spec.defaults
    return [
        str(d.attempts),
        _backoff(d.backoff),
        "none" if d.timeout is None else _ms(d.timeout),
        _keep(d.remove_on_complete),
        _keep(d.remove_on_fail),
    ]


def test_the_catalog_table_is_the_catalog() -> None:
    rows = {_plain(row[0]): row[1:] for row in _table_after("<!-- catalog-table")}
    catalog = {name.value: spec for name, spec in CATALOG.items()}
    assert {"my-new-job", "notification-email", "audit-logs", "webhook-delivery"} <= set(rows)
    for queue, cells in rows.items():
        assert queue in catalog, f"catalog table: {queue!r} is not in CATALOG"
        assert cells == _catalog_row(catalog[queue]), f"catalog table row {queue!r}"


def test_the_jobs_that_ship_are_every_shipped_queue() -> None:
    shipped = _table_after("## The jobs that ship")
    assert {_plain(row[0]) for row in shipped} == {
        _plain(row[0]) for row in _table_after("<!-- catalog-table")
    }


# The checklist


def test_the_checklist_is_what_the_checklist_test_reports() -> None:
    documented = re.findall(r"^- \[ \] (.+?)(?: — .*)?$", TEXT, flags=re.MULTILINE)
    nothing = Snapshot(set(), {}, {}, set(), set(), set())
    spec = next(iter(CATALOG.values()))
    bad_entry = spec.__class__(
        name=spec.name, data_model=dict, result_model=str, defaults=JobOptions(attempts=1)
    )
    with_entry = Snapshot(set(), {"send-sms": bad_entry}, {}, set(), set(), set())
    without, broken = missing_items("send-sms", nothing), missing_items("send-sms", with_entry)
    assert set(documented) == set(without) | set(broken)
    for reported in (without, broken):
        assert [item for item in documented if item in reported] == reported
