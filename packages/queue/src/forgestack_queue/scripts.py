"""The Lua scripts, loaded once per client; redis-py runs them by SHA and reloads after a flush."""

import re
from dataclasses import dataclass, fields
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from itertools import pairwise
from weakref import WeakKeyDictionary

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from .cluster_scripts import ClusterScript
from .keys import is_cluster
from .options import JobOptions, retention_limits

COMPOSED = {"finish_claim": ("finish", "claim")}
"""Scripts made of others: each part's source becomes a local function `<part>_script(KEYS,
ARGV)` that the composed script's own driver calls, so the parts stay the one definition."""

LIBRARIES = {"add": ("_add",), "add_followed": ("_add",)}
"""Function definitions a script uses beside the prelude's, placed after it: add_followed.lua
runs `add_jobs` on ranges of its own KEYS and ARGV, which a part (a function of whole KEYS and
ARGV) could only get as copies."""


def layer_defaults() -> str:
    """JobOptions' defaults the scripts apply to stored options that omit them (the producer
    stores only what differs from the defaults), written from the model so the two never drift."""
    fields = JobOptions.model_fields
    count, age = retention_limits(fields["remove_on_fail"].default)
    return (
        "-- From JobOptions (scripts.layer_defaults): what an option left out of 'opts' means.\n"
        f"local DEFAULT_ATTEMPTS = {fields['attempts'].default}\n"
        f"local DEFAULT_FAIL_KEEP_COUNT, DEFAULT_FAIL_KEEP_AGE = {count}, {age}\n"
    )


@cache
def _lua_dir() -> Traversable:
    return files(__package__) / "lua"


@cache
def _read(name: str) -> str:
    """Each file read once, from a directory looked up once: the prelude goes into every script,
    and finding the package's files anew costs more than the read (about 2 ms of a worker's
    start before its first claim, 37 reads for 15 scripts)."""
    return (_lua_dir() / f"{name}.lua").read_text(encoding="utf-8")


@cache
def _source(name: str) -> str:
    """The script with the layer's defaults and the shared prelude (time, run order) before it:
    Lua has no imports."""
    parts = "".join(
        f"local function {part}_script(KEYS, ARGV)\n{_read(part)}\nend\n"
        for part in COMPOSED.get(name, ())
    )
    libraries = "".join(_read(library) for library in LIBRARIES.get(name, ()))
    body = libraries + parts + _read(name)
    return layer_defaults() + prelude_for(body) + body


_TOP_LOCAL = re.compile(r"^local (?:function (\w+)|([\w, ]+?)\s*=)", re.M)
_NAME = re.compile(r"[A-Za-z_]\w*")


@cache
def _prelude_parts() -> tuple[tuple[frozenset[str], str], ...]:
    """The prelude cut before each top-level `local`: the names each part defines, and its text
    (a part's comment lines stay with the part before it; nothing but locals, their bodies,
    comments and `end` stands at the left margin, which a test checks)."""
    text = _read("_prelude")
    starts = [match.start() for match in _TOP_LOCAL.finditer(text)]
    bounds = [0, *starts[1:], len(text)] if starts else [0, len(text)]
    parts = []
    for begin, end in pairwise(bounds):
        part = text[begin:end]
        names = frozenset(
            name.strip()
            for match in _TOP_LOCAL.finditer(part)
            for name in (match[1] or match[2]).split(",")
        )
        parts.append((names, part))
    return tuple(parts)


def prelude_for(body: str) -> str:
    """The prelude's parts that `body` uses, directly or through other parts: every `local
    function` is a closure made anew on each call of a script (Redis runs the whole text per
    call), so the ~30 of the prelude cost every call ~1 us before any of them ran. A name that
    occurs anywhere (a comment, a field) keeps its part: kept too many, never too few; parts
    only use names defined before them, so one pass from the end finds them all."""
    used = set(_NAME.findall(body))
    kept: list[str] = []
    for names, part in reversed(_prelude_parts()):
        if names & used:
            kept.append(part)
            used.update(_NAME.findall(part))
    return "".join(reversed(kept))


@dataclass(frozen=True, slots=True)
class Scripts:
    add: AsyncScript
    add_followed: AsyncScript
    claim: AsyncScript
    finish: AsyncScript
    finish_claim: AsyncScript
    retry: AsyncScript
    remove: AsyncScript
    clean: AsyncScript
    extend: AsyncScript
    trim: AsyncScript
    release_claim: AsyncScript
    cancel: AsyncScript
    promote: AsyncScript
    set_priority: AsyncScript
    report: AsyncScript


SCRIPT_NAMES = tuple(field.name for field in fields(Scripts))
"""The job layer's scripts, as `Scripts` names them."""

_by_client: "WeakKeyDictionary[Redis, Scripts]" = WeakKeyDictionary()


def scripts_for(redis: Redis) -> Scripts:
    """Registered once per client (hashing the sources is not free on a hot path)."""
    loaded = _by_client.get(redis)
    if loaded is None:
        # A cluster client's calls are sent once (cluster_scripts.py); a plain client's already are.
        register = (
            (lambda text: ClusterScript(redis, text))  # type: ignore[arg-type]
            if is_cluster(redis)
            else redis.register_script
        )
        loaded = Scripts(**{name: register(_source(name)) for name in SCRIPT_NAMES})
        _by_client[redis] = loaded
    return loaded
