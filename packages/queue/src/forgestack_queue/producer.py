"""`Queue`: add jobs and read or manage their state. One Lua call per add (or per batch)."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from .errors import InvalidJobStateError, JobIdInUseError, JobNotFoundError
from .keys import QueueKeys, job_key_prefix, queues_key
from .options import JobOptions
from .records import JobRecord, record_from_hash
from .scripts import scripts_for
from .serializer import dumps
from .states import JobState

NEWEST_FIRST = frozenset({JobState.COMPLETED, JobState.FAILED})
_DEFAULT_OPTIONS = JobOptions()


@dataclass(frozen=True, slots=True)
class AddResult:
    id: str
    state: JobState
    created: bool
    """False when `options.job_id` named a job that already exists: nothing was added."""


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[JobRecord]
    next_cursor: str | None


_options_json: dict[int, tuple[JobOptions, str]] = {}


def _options_to_json(opts: JobOptions) -> str:
    """Callers reuse a few option objects (the catalog's); serialise each once, not per job."""
    hit = _options_json.get(id(opts))
    if hit is not None and hit[0] is opts:
        return hit[1]
    if len(_options_json) > 1024:
        _options_json.clear()
    text = opts.model_dump_json(exclude_defaults=True)
    _options_json[id(opts)] = (opts, text)
    return text


class Queue:
    """A named queue on one Redis. Options given here are final: merge catalog defaults before."""

    def __init__(self, redis: Redis, name: str, *, prefix: str = "fs") -> None:
        if not name or ":" in name:
            raise ValueError(f"queue name {name!r} must be non-empty and contain no ':'")
        self.redis = redis
        self.name = name
        self.prefix = prefix
        self.keys = QueueKeys(prefix, name)
        self._scripts = scripts_for(redis)

    async def add(
        self, data: Any, options: JobOptions | None = None, *, name: str | None = None
    ) -> AddResult:
        (result,) = await self.add_bulk([(data, options)], name=name)
        return result

    async def add_bulk(
        self, jobs: Sequence[tuple[Any, JobOptions | None]], *, name: str | None = None
    ) -> list[AddResult]:
        """All jobs in one script call: one round trip, and all-or-nothing on a Redis error."""
        if not jobs:
            return []
        args: list[str | bytes | int] = [job_key_prefix(self.prefix), self.name]
        for data, options in jobs:
            opts = options or _DEFAULT_OPTIONS
            args += [
                opts.job_id or uuid.uuid4().hex,
                name or self.name,
                dumps(data),
                _options_to_json(opts),
                opts.priority,
                opts.delay,
                opts.attempts,
            ]
        k = self.keys
        rows = await self._scripts.add(
            keys=[k.wait, k.delayed, k.seq, k.marker, queues_key(self.prefix)], args=args
        )
        results = []
        for job_id, created, state, owner in rows:
            if owner.decode() != self.name:
                raise JobIdInUseError(job_id.decode(), owner.decode())
            results.append(
                AddResult(id=job_id.decode(), created=bool(created), state=JobState(state.decode()))
            )
        return results

    async def get_job(self, job_id: str) -> JobRecord | None:
        record = await find_job(self.redis, job_id, prefix=self.prefix)
        if record is None or record.queue != self.name:
            return None
        return record

    async def counts(self) -> dict[JobState, int]:
        async with self.redis.pipeline(transaction=True) as pipe:
            for state in JobState:
                pipe.zcard(self.keys.state_set(state))
            values = await pipe.execute()
        return dict(zip(JobState, values, strict=True))

    async def get_jobs(
        self, state: JobState, *, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        """Completed and failed newest first; waiting in run order; delayed by due time.

        The cursor is an offset into the state's set: cheap, and exact while the set is unchanged."""
        start = int(cursor) if cursor else 0
        key = self.keys.state_set(state)
        end = start + limit - 1
        if state in NEWEST_FIRST:
            ids = await self.redis.zrevrange(key, start, end)
        else:
            ids = await self.redis.zrange(key, start, end)
        async with self.redis.pipeline(transaction=False) as pipe:
            for raw_id in ids:
                pipe.hgetall(self.keys.job(raw_id.decode()))
            hashes = await pipe.execute() if ids else []
        jobs = [record_from_hash(h) for h in hashes if h]
        next_cursor = str(start + limit) if len(ids) == limit else None
        return JobPage(jobs=jobs, next_cursor=next_cursor)

    async def retry(self, job_id: str) -> JobRecord:
        """Failed -> waiting with attempts reset, as an operator's manual retry."""
        k = self.keys
        moved, state = await self._scripts.retry(
            keys=[k.failed, k.wait, k.seq, k.marker],
            args=[job_key_prefix(self.prefix), self.name, "one", job_id],
        )
        if not moved:
            if state == b"missing":
                raise JobNotFoundError(job_id)
            raise InvalidJobStateError(job_id, state.decode(), "failed")
        record = await self.get_job(job_id)
        if record is None:
            raise JobNotFoundError(job_id)
        return record

    async def retry_failed(self, *, batch: int = 1000) -> int:
        k = self.keys
        total = 0
        while True:
            moved, _ = await self._scripts.retry(
                keys=[k.failed, k.wait, k.seq, k.marker],
                args=[job_key_prefix(self.prefix), self.name, "bulk", batch],
            )
            total += int(moved)
            if moved < batch:
                return total

    async def remove(self, job_id: str) -> None:
        k = self.keys
        outcome = await self._scripts.remove(
            keys=[k.job(job_id), k.wait, k.delayed, k.completed, k.failed],
            args=[job_id, self.name],
        )
        if outcome == b"missing":
            raise JobNotFoundError(job_id)
        if outcome != b"ok":
            raise InvalidJobStateError(job_id, outcome.decode(), "not active")

    async def clean(self, state: JobState, older_than_s: float, *, limit: int = 10_000) -> int:
        """Removes jobs of `state` older than the cut-off; active jobs are never cleaned."""
        if state is JobState.ACTIVE:
            raise InvalidJobStateError("*", state.value, "waiting, delayed, completed or failed")
        removed = await self._scripts.clean(
            keys=[self.keys.state_set(state)],
            args=[job_key_prefix(self.prefix), state.value, int(older_than_s * 1000), limit],
        )
        return int(removed)


async def find_job(redis: Redis, job_id: str, *, prefix: str = "fs") -> JobRecord | None:
    """Any queue's job by id: ids are unique across queues."""
    try:
        raw: dict[bytes, bytes] = await redis.hgetall(job_key_prefix(prefix) + job_id)  # type: ignore[misc]
    except ResponseError:
        return None  # not a hash: a corrupt record is reported when a worker claims it
    return record_from_hash(raw) if raw else None


async def known_queues(redis: Redis, *, prefix: str = "fs") -> list[str]:
    members: set[bytes] = await redis.smembers(queues_key(prefix))  # type: ignore[misc]
    return sorted(m.decode() for m in members)
