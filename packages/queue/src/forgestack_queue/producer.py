"""`Queue`: add jobs and read or manage their state. One Lua call per add (or per batch)."""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from redis.asyncio import Redis

from .actions import JobActions
from .adds import AddResult, add_call, add_results
from .errors import InvalidJobStateError, JobNotFoundError
from .followed import FollowUp, add_bulk_followed, add_followed
from .keys import check_prefix, check_queue_name, layout_for, queues_key
from .options import JobOptions
from .owners import full_id, local_id, validate_owner
from .reads import find_job, read_page
from .records import JobRecord
from .scripts import scripts_for
from .states import JobState

ResultT = TypeVar("ResultT")

NEWEST_FIRST = frozenset({JobState.COMPLETED, JobState.FAILED})
FINISHED = NEWEST_FIRST
DEFAULT_MAX_PAYLOAD_BYTES = 512 * 1024
"""Serialised job data over this is refused (PayloadTooLargeError): Redis holds every waiting
job in memory, and the API's request cap (1 MiB) leaves room for the envelope."""
CLEAN_BATCH = 1000
"""Jobs removed per clean script call: each call is atomic and short (< ~10 ms)."""
CLEAN_SCAN_WINDOW = 1000
"""Waiting/delayed members examined per clean call (they are not ordered by age)."""


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[JobRecord]
    next_cursor: str | None


_named: "WeakKeyDictionary[Redis, dict[tuple[str, str], float]]" = WeakKeyDictionary()
"""Per cluster client: when this process last put each (prefix, queue) name in the set of queue
names, which on a cluster lives outside the queue's slot (add.lua cannot SADD it)."""

NAME_REFRESH_S = 60.0
"""A cluster producer adds its queue's name again at most this often: the set may have been
deleted (an operator's cleanup, a flushed shard) while the process ran, and the name then comes
back with the next add within this bound, for one SADD per queue a minute."""


MAX_SET_SIZE = 2**32
"""A Redis sorted set holds fewer members than this: a cursor at or past it is past the end."""


class Queue(JobActions):
    """A named queue on one Redis. Options given here are final: merge catalog defaults before.

    Bound to an `owner` (the API passes the organisation), every method acts only on that owner's
    jobs and takes and returns its local ids; another owner's job is simply not found. Without an
    owner it is the operator's view: every job of the queue, by full id (`<owner>~<id>` for owned
    jobs), and the jobs it adds are unowned."""

    def __init__(
        self,
        redis: Redis,
        name: str,
        *,
        prefix: str = "fs",
        owner: str | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        check_queue_name(name)
        check_prefix(prefix)
        self.redis = redis
        self.name = name
        self.prefix = prefix
        self.owner = None if owner is None else validate_owner(owner)
        self.max_payload_bytes = max_payload_bytes
        self.keys = layout_for(redis, prefix, name)
        self._scripts = scripts_for(redis)

    @cached_property
    def add_words(self) -> tuple[tuple[str, ...], tuple[str, str, str]]:
        """add.lua's KEYS and first three ARGV for this queue: the same for every add, so made
        once per handle (the API keeps its handles) instead of a dozen key strings per add."""
        k = self.keys
        head = (k.job_prefix, k.base, self.name)
        if k.tagged:
            return (k.wait, k.delayed, k.seq, k.marker, k.metrics), head
        return (k.wait, k.delayed, k.seq, k.marker, queues_key(self.prefix), k.metrics), head

    async def add(
        self, data: Any, options: JobOptions | None = None, *, name: str | None = None
    ) -> AddResult:
        (result,) = await self.add_bulk([(data, options)], name=name)
        return result

    async def add_bulk(
        self, jobs: Sequence[tuple[Any, JobOptions | None]], *, name: str | None = None
    ) -> list[AddResult]:
        """All jobs in one script call: one round trip, and all or nothing (an oversized payload
        or an id of another queue writes no job of the batch)."""
        if not jobs:
            return []
        keys, args = add_call(self, jobs, name=name)
        if self.keys.tagged:
            # Before the first add: the set stays a superset of the queues holding jobs.
            await self._name_queue()
        return add_results(self, await self._scripts.add(keys=keys, args=args))

    async def add_followed(
        self,
        data: Any,
        options: JobOptions | None,
        then: Callable[[str], FollowUp],
        *,
        name: str | None = None,
    ) -> tuple[AddResult, AddResult | None]:
        """`add`, and when the job is new the job `then(its id)` describes (see followed.py)."""
        return await add_followed(self, data, options, then, name=name)

    async def add_bulk_followed(
        self,
        jobs: Sequence[tuple[Any, JobOptions | None]],
        then: Callable[[int], FollowUp],
        *,
        name: str | None = None,
    ) -> tuple[list[AddResult], AddResult | None]:
        """`add_bulk`, and when any job is new the job `then(how many)` describes (followed.py)."""
        return await add_bulk_followed(self, jobs, then, name=name)

    async def _name_queue(self) -> None:
        named = _named.setdefault(self.redis, {})
        now = time.monotonic()
        if now - named.get((self.prefix, self.name), -NAME_REFRESH_S) >= NAME_REFRESH_S:
            await self.redis.sadd(queues_key(self.prefix), self.name)  # type: ignore[misc]
            named[(self.prefix, self.name)] = now

    def local(self, job_id: str) -> str:
        """A Redis id as this view names it."""
        return local_id(self.owner, job_id) or job_id

    def _set(self, state: JobState) -> str:
        """The set this view reads: the owner's index, or the queue's own state set."""
        if self.owner is None:
            return self.keys.state_set(state)
        return self.keys.owner_set(self.owner, state)

    async def get_job(self, job_id: str) -> JobRecord | None:
        return await find_job(
            self.redis, job_id, prefix=self.prefix, owner=self.owner, queue=self.name
        )

    async def wait(
        self, job_id: str, timeout_s: float, *, result_model: type[ResultT] | None = None
    ) -> ResultT | Any:
        """Returns the job's result once it finishes (validated as `result_model` when given),
        or raises its failure as JobFailedError; WaitTimeoutError when `timeout_s` runs out first.
        Blocks on the queue's event stream, never polling the job (see waiting.py)."""
        # Imported here: waiters are producers; a worker, which only adds, never loads it.
        from .waiting import result_of

        full = self._full(job_id)
        if full is None:
            raise JobNotFoundError(job_id)
        return await result_of(
            self.redis, self.keys, full, job_id, timeout_s, result_model, self.owner
        )

    async def counts(self) -> dict[JobState, int]:
        async with self.redis.pipeline(transaction=not self.keys.tagged) as pipe:
            for state in JobState:
                pipe.zcard(self._set(state))
            values = await pipe.execute()
        return dict(zip(JobState, values, strict=True))

    async def finished_within(self, window_ms: int) -> dict[JobState, int]:
        """Completed and failed jobs of this view that finished in the last `window_ms`, by the
        Redis clock: their sets are scored by finish time, so this is two ZCOUNTs, no scan."""
        seconds, micros = await self.redis.time()
        since = seconds * 1000 + micros // 1000 - window_ms
        async with self.redis.pipeline(transaction=False) as pipe:
            for state in FINISHED:
                pipe.zcount(self._set(state), since, "+inf")
            values = await pipe.execute()
        return dict(zip(FINISHED, values, strict=True))

    async def get_jobs(
        self, state: JobState, *, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        """Completed and failed newest first; waiting in run order; delayed by due time.

        The cursor is an offset into the state's set: cheap, and exact while the set is unchanged."""
        start = int(cursor) if cursor else 0
        if start >= MAX_SET_SIZE:
            # Past any sorted set's end; Redis itself refuses offsets beyond a signed 64-bit int.
            return JobPage(jobs=[], next_cursor=None)
        key = self._set(state)
        end = start + limit - 1
        if state in NEWEST_FIRST:
            ids = await self.redis.zrevrange(key, start, end)
        else:
            ids = await self.redis.zrange(key, start, end)
        jobs = await read_page(self.redis, self.keys, state, ids, self.owner)
        next_cursor = str(start + limit) if len(ids) == limit else None
        return JobPage(jobs=jobs, next_cursor=next_cursor)

    def _full(self, job_id: str) -> str | None:
        """The Redis id of one of this view's jobs; None when the id cannot be one of them."""
        if self.owner is not None and "~" in job_id:
            return None
        return full_id(self.owner, job_id)

    async def retry(self, job_id: str) -> JobRecord:
        """Failed -> waiting with attempts reset, as an operator's manual retry."""
        full = self._full(job_id)
        if full is None:
            raise JobNotFoundError(job_id)
        k = self.keys
        moved, state = await self._scripts.retry(
            keys=[k.failed, k.failed, k.wait, k.marker],
            args=[k.job_prefix, k.base, self.name, "one", full],
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
                keys=[self._set(JobState.FAILED), k.failed, k.wait, k.marker],
                args=[k.job_prefix, k.base, self.name, "bulk", batch],
            )
            total += int(moved)
            if moved < batch:
                return total

    async def remove(self, job_id: str) -> None:
        full = self._full(job_id)
        if full is None:
            raise JobNotFoundError(job_id)
        k = self.keys
        outcome = await self._scripts.remove(
            keys=[k.job(full), k.wait, k.delayed, k.completed, k.failed, k.logs(full)],
            args=[full, self.name, k.base],
        )
        if outcome == b"missing":
            raise JobNotFoundError(job_id)
        if outcome != b"ok":
            raise InvalidJobStateError(job_id, outcome.decode(), "not active")

    async def clean(self, state: JobState, older_than_s: float, *, limit: int = 10_000) -> int:
        """Removes up to `limit` jobs of `state` older than the cut-off; active jobs are never
        cleaned. Works in atomic batches of CLEAN_BATCH, so any size is safe and Redis never
        stalls; jobs added or moved while it runs may be kept until the next clean."""
        if state is JobState.ACTIVE:
            raise InvalidJobStateError("*", state.value, "waiting, delayed, completed or failed")
        k = self.keys
        part = k.state_set(state).removeprefix(k.base)
        total, start = 0, 0
        while total < limit:
            removed, start = await self._scripts.clean(
                keys=[self._set(state)],
                args=[
                    k.job_prefix,
                    k.base,
                    part,
                    int(older_than_s * 1000),
                    min(CLEAN_BATCH, limit - total),
                    start,
                    CLEAN_SCAN_WINDOW,
                ],
            )
            total += int(removed)
            if start < 0:
                break
        return total

    async def trim(
        self,
        state: JobState,
        *,
        count: int | None = None,
        age_s: int | None = None,
        limit: int = 1000,
    ) -> int:
        """Applies a retention rule to the queue's completed or failed jobs (every owner's),
        removing at most `limit`: a retention cron calls it until it returns less than `limit`.
        Keeps the newest `count` and those younger than `age_s`; None means no such rule."""
        if self.owner is not None:
            raise ValueError("trim applies a queue's retention to every owner: operator view only")
        if state not in FINISHED:
            raise InvalidJobStateError("*", state.value, "completed or failed")
        k = self.keys
        removed = await self._scripts.trim(
            keys=[k.state_set(state)],
            args=[
                k.job_prefix,
                k.base,
                k.state_set(state).removeprefix(k.base),
                -1 if count is None else count,
                -1 if age_s is None else age_s,
                limit,
            ],
        )
        return int(removed)


async def known_queues(redis: Redis, *, prefix: str = "fs") -> list[str]:
    members: set[bytes] = await redis.smembers(queues_key(prefix))  # type: ignore[misc]
    return sorted(m.decode() for m in members)


__all__ = ["AddResult", "JobPage", "Queue", "find_job", "known_queues"]
