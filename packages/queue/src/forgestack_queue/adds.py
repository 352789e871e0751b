"""One add script call: the keys and arguments that write a batch of jobs, and its reply read as
`AddResult`s. `Queue.add_bulk` sends it alone; `followed.py` sends two in one composed call."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import JobIdInUseError, PayloadTooLargeError
from .ids import uuid4_hex
from .meta import current_meta, meta_to_json
from .options import JobOptions
from .owners import full_id
from .serializer import dumps
from .states import JobState

if TYPE_CHECKING:
    from .producer import Queue

Jobs = Sequence[tuple[Any, JobOptions | None]]
Words = list[str | bytes | int]

_DEFAULT_OPTIONS = JobOptions()
_STATES = {state.value.encode(): state for state in JobState}
"""A reply's state as the enum member by a dict look-up (the enum's own call is the fallback)."""


@dataclass(frozen=True, slots=True)
class AddResult:
    id: str
    state: JobState
    created: bool
    """False when `options.job_id` named a job that already exists: nothing was added."""


_options_json: dict[int, tuple[JobOptions, str]] = {}


def _options_to_json(opts: JobOptions) -> str:
    """Callers reuse a few option objects (the catalog's); serialise each once, not per job.
    Only what differs from JobOptions' defaults is stored (the catalog's retention rules are the
    defaults: ~85 bytes a job saved): readers fill the rest in, records.py through the model and
    the claim script from the constants scripts.layer_defaults writes from it."""
    hit = _options_json.get(id(opts))
    if hit is not None and hit[0] is opts:
        return hit[1]
    if len(_options_json) > 1024:
        _options_json.clear()
    text = json.dumps(opts.model_dump(mode="json", exclude_defaults=True), separators=(",", ":"))
    _options_json[id(opts)] = (opts, text)
    return text


def new_id(options: JobOptions | None) -> str:
    """The local id a job gets: its `job_id`, or a fresh one."""
    return (options.job_id if options else None) or uuid4_hex()


def add_call(
    queue: "Queue",
    jobs: Jobs,
    *,
    name: str | None = None,
    ids: Sequence[str] = (),
    meta: str | None = None,
) -> tuple[list[str], Words]:
    """add.lua's KEYS and ARGV for `jobs` (local `ids` chosen by the caller, else `new_id`'s;
    `meta`: `meta_json()`, when the caller has it already). An oversized payload raises here,
    before anything is sent."""
    keys, head = queue.add_words
    args: Words = [*head]
    if meta is None:
        meta = meta_json()
    for index, (data, options) in enumerate(jobs):
        opts = options or _DEFAULT_OPTIONS
        payload = dumps(data)
        if len(payload) > queue.max_payload_bytes:
            raise PayloadTooLargeError(len(payload), queue.max_payload_bytes)
        local = ids[index] if ids else new_id(opts)
        args += [
            full_id(queue.owner, local),
            name or queue.name,
            payload,
            _options_to_json(opts),
            opts.priority,
            opts.delay,
            meta,
        ]
    return [*keys], args


def meta_json() -> str:
    """The propagation context jobs added now carry, as add.lua stores it."""
    return meta_to_json(current_meta())


def add_results(queue: "Queue", rows: list[Any]) -> list[AddResult]:
    """add.lua's reply: one row per job, or the clash that wrote none of them."""
    if rows and rows[0] == b"clash":
        _, job_id, other = rows
        raise JobIdInUseError(queue.local(job_id.decode()), other.decode())
    return [
        AddResult(
            id=queue.local(job_id.decode()),
            created=bool(created),
            state=_STATES.get(state) or JobState(state.decode()),
        )
        for job_id, created, state in rows
    ]
