"""Checks that a command a page tells the reader to type is real: each `uv run` program exists,
and `forgestack`, `arq` and `pytest` command lines parse as their own parsers would parse them,
without running anything."""

import importlib
import importlib.util
import re
import shlex
import sys
from pathlib import Path

import click
from arq.cli import cli as arq_cli
from forgestack_cli.main import cli as forgestack_cli
from forgestack_shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SEPARATORS = {"&&", "||", ";", "|"}
ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=")
PYTEST_OPTIONS_WITH_VALUE = {"-m", "-k", "-p", "--timeout", "--maxfail"}
SETTINGS = {name.upper() for name in Settings.model_fields}
OTHER_VARIABLES = {"UV_PYTHON_DOWNLOADS"}
"""Environment variables a page may set that are not ForgeStack settings."""


def shell_commands(block: str) -> list[str]:
    """Each command of a shell block: continuations joined, comments and blank lines dropped,
    `a && b` split in two."""
    joined = block.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        current: list[str] = []
        for word in [*shlex.split(line, comments=True), ";"]:
            if word in SEPARATORS:
                if current:
                    commands.append(shlex.join(current))
                current = []
            else:
                current.append(word)
    return commands


def check_command(command: str, *, mention: bool = False) -> str:
    """The program the command runs, once it is known to exist and its arguments parse;
    AssertionError naming the command otherwise. A `mention` (`forgestack new-job` in a
    sentence) may leave out required arguments, not name unknown ones."""
    words = shlex.split(command)
    while words and ASSIGNMENT.match(words[0]):
        name = ASSIGNMENT.match(words[0]).group(1)  # type: ignore[union-attr]
        assert name in SETTINGS | OTHER_VARIABLES, f"{command!r} sets {name}, not a setting"
        words = words[1:]
    if words[:2] == ["uv", "run"]:
        words = words[2:]
    assert words, f"{command!r} runs nothing"
    program, args = words[0], words[1:]
    try:
        CHECKS.get(program, _console_script)(program, args)
    except click.exceptions.Exit as exc:  # --help or --version: parsed, then asked to stop
        if exc.exit_code != 0:
            raise AssertionError(f"{command!r} exits {exc.exit_code}") from None
    except (click.MissingParameter, NeedsSubcommand) as exc:
        if not mention:
            raise AssertionError(f"{command!r} is incomplete: {exc}") from None
    except click.ClickException as exc:
        raise AssertionError(f"{command!r} does not parse: {exc.format_message()}") from None
    return program


class NeedsSubcommand(AssertionError):
    """A group named without one of its commands."""


def _click(
    command: click.Command, name: str, args: list[str], parent: click.Context | None
) -> None:
    ctx = command.make_context(name, list(args), parent=parent)
    if isinstance(command, click.Group):
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            raise NeedsSubcommand(f"{name} needs a subcommand")
        sub_name, sub, sub_args = command.resolve_command(ctx, rest)
        assert sub is not None and sub_name is not None
        _click(sub, sub_name, sub_args, ctx)


def _forgestack(program: str, args: list[str]) -> None:
    _click(forgestack_cli, program, args, None)


def _arq(program: str, args: list[str]) -> None:
    ctx = arq_cli.make_context(program, list(args))
    module, _, attribute = ctx.params["worker_settings"].rpartition(".")
    assert hasattr(importlib.import_module(module), attribute), f"no {attribute} in {module}"


def _pytest(program: str, args: list[str]) -> None:
    words = iter(args)
    for word in words:
        if word in PYTEST_OPTIONS_WITH_VALUE:
            next(words)
        elif not word.startswith("-"):
            path, _, test = word.partition("::")
            assert (ROOT / path).exists(), f"pytest would not find {path}"
            if test:
                assert f"def {test.split('[')[0]}(" in (ROOT / path).read_text(), (
                    f"no test {test} in {path}"
                )


def _python(program: str, args: list[str]) -> None:
    if args[:1] == ["-m"]:
        assert importlib.util.find_spec(args[1]) is not None, f"no module {args[1]}"
    else:
        assert (ROOT / args[0]).is_file(), f"no script {args[0]}"


def _console_script(program: str, args: list[str]) -> None:
    assert (Path(sys.executable).parent / program).exists(), (
        f"`uv run {program}`: no such program in the workspace's environment"
    )


CHECKS = {"forgestack": _forgestack, "arq": _arq, "pytest": _pytest, "python": _python}
