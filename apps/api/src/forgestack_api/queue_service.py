"""`QueueService`: the API's one door to the queues.

Every enqueue goes through the catalog: the payload must be the queue's data model (checked by
mypy through the catalog entry's type parameters, and again at run time), the options are merged over the
queue's defaults, and nothing invalid is ever written to Redis. Reads and operator actions
(retry, remove, clean) go through here too, so routes never touch Redis themselves.

A service is bound to one owner (an organisation's id, or None for the operator's view of every
job): its queue handles act only on that owner's jobs and take and return that owner's job ids.
Routes get one bound to the caller (`deps.JobsDep`), never the unbound one the lifespan holds.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from forgestack_queue.controls import QueueControls
from forgestack_queue.cron import CRON_QUEUE
from forgestack_queue.errors import InvalidJobStateError, JobNotFoundError
from forgestack_queue.events import (
    QueueEvent,
    last_event_id,
    last_event_ids,
    read_events,
    read_queues,
)
from forgestack_queue.followed import FollowUp
from forgestack_queue.keys import QueueKeys, layout_for
from forgestack_queue.options import JobOptions
from forgestack_queue.owners import full_id
from forgestack_queue.producer import AddResult, JobPage, Queue, find_job
from forgestack_queue.queue_stats import QueueCounts, history
from forgestack_queue.records import JobRecord
from forgestack_queue.states import JobState
from forgestack_queue.waiting import WaitOutcome, wait_for_job
from forgestack_queue.workers import WorkerInfo, live_workers
from forgestack_shared.catalog import CATALOG, QueueSpec, spec_for
from forgestack_shared.jobs.email_templates import PRODUCER_CONTEXT
from forgestack_shared.queues import QueueName
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from .errors import JobInputError, UnknownQueueError, WrongPayloadTypeError, validation_errors

DataT = TypeVar("DataT", bound=BaseModel)

Loc = tuple[str | int, ...]


MAX_VIEWS = 1024
"""Owner-bound services kept for reuse; past this many owners the kept ones are all dropped."""


class QueueService:
    """Bound to an owner by `for_owner`, which hands every request of that owner the same service
    (and so the same queue handles): a handle made per request cost as much as a tenth of an
    enqueue. Handles hold no state of their own, so sharing them is safe."""

    def __init__(self, redis: Redis, *, prefix: str, owner: str | None = None) -> None:
        self._redis = redis
        self._prefix = prefix
        self.owner = owner
        self._queues: dict[QueueName, Queue] = {}
        self._views: dict[str | None, QueueService] = {owner: self}

    def for_owner(self, owner: str | None) -> "QueueService":
        view = self._views.get(owner)
        if view is None:
            if len(self._views) >= MAX_VIEWS:
                self._views.clear()
            view = QueueService(self._redis, prefix=self._prefix, owner=owner)
            view._views = self._views
            self._views[owner] = view
        return view

    @property
    def queue_names(self) -> list[QueueName]:
        return list(CATALOG)

    def known_queue(self, queue_name: str) -> QueueName:
        """The catalog's name for it, or `UnknownQueueError` (404) before any role check."""
        return _spec(queue_name).name

    def queue(self, name: QueueName) -> Queue:
        if name not in self._queues:
            self._queues[name] = Queue(
                self._redis, name.value, prefix=self._prefix, owner=self.owner
            )
        return self._queues[name]

    async def add(
        self, queue: QueueSpec[DataT, Any], data: DataT, options: JobOptions | None = None
    ) -> AddResult:
        """Enqueue a typed payload; `options` override the queue's catalog defaults. The spec's
        type parameters name its data model, so mypy rejects another model here: no per-queue
        overload to keep in step with the catalog."""
        spec = queue
        if not isinstance(data, spec.data_model):
            raise WrongPayloadTypeError(
                f"queue {spec.name.value!r} takes {spec.data_model.__name__}, "
                f"not {type(data).__name__}"
            )
        # Re-validated because `model_construct` or mutation can produce an invalid instance; in
        # its JSON form, which is what the worker will validate too, and dumped only once.
        payload = data.model_dump(mode="json")
        try:
            spec.data_model.model_validate(payload, context=PRODUCER_CONTEXT)
        except ValidationError as exc:
            raise JobInputError(validation_errors(exc, "data")) from exc
        merged = options.merged_over(spec.defaults) if options else spec.defaults
        return await self.queue(spec.name).add(payload, merged)

    async def add_raw(
        self,
        queue_name: str,
        data: Mapping[str, Any],
        options: Mapping[str, Any] | None = None,
        *,
        then: Callable[[str], FollowUp] | None = None,
    ) -> AddResult:
        """Enqueue untyped input (HTTP): unknown queue and invalid data or options raise. `then`
        builds, from the job's id, the job that must follow a new one (its audit event): added
        with it, both or neither on a single Redis (forgestack_queue.followed)."""
        spec = _spec(queue_name)
        model, opts = _validate(spec, data, options, ())
        # The model itself: the job layer's JSON encoder writes it as its JSON dump would be.
        if then is None:
            return await self.queue(spec.name).add(model, opts)
        result, _ = await self.queue(spec.name).add_followed(model, opts, then)
        return result

    async def add_bulk_raw(
        self,
        queue_name: str,
        jobs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any] | None]],
        *,
        then: Callable[[int], FollowUp] | None = None,
    ) -> list[AddResult]:
        """All or nothing: every job is validated before any is written, then one bulk write.
        `then` builds, from the number of new jobs, the job that must follow them (their audit
        event): added with them when any is new, all or none on a single Redis."""
        spec = _spec(queue_name)
        prepared: list[tuple[Any, JobOptions]] = []
        errors: list[dict[str, Any]] = []
        for index, (data, options) in enumerate(jobs):
            try:
                model, opts = _validate(spec, data, options, ("jobs", index))
            except JobInputError as exc:
                errors.extend(exc.errors)
                continue
            prepared.append((model, opts))
        if errors:
            raise JobInputError(errors)
        if then is None:
            return await self.queue(spec.name).add_bulk(prepared)
        results, _ = await self.queue(spec.name).add_bulk_followed(prepared, then)
        return results

    async def get_job(self, job_id: str) -> JobRecord:
        # On a Redis Cluster the catalog's queues are looked in too (reads.find_job), so an id
        # is found even before its queue's name reached the set of names.
        record = await find_job(
            self._redis,
            job_id,
            prefix=self._prefix,
            owner=self.owner,
            queues=[name.value for name in CATALOG],
        )
        if record is None:
            raise JobNotFoundError(job_id)
        return record

    async def list_jobs(
        self, queue_name: str, state: JobState, limit: int, cursor: str | None
    ) -> JobPage:
        return await self.queue(_spec(queue_name).name).get_jobs(state, limit=limit, cursor=cursor)

    async def counts(self, name: QueueName) -> dict[JobState, int]:
        return await self.queue(name).counts()

    async def finished_within(self, name: QueueName, window_ms: int) -> dict[JobState, int]:
        return await self.queue(name).finished_within(window_ms)

    async def retry(self, job_id: str) -> JobRecord:
        record = await self.get_job(job_id)
        return await self._queue_of(record).retry(job_id)

    async def retry_failed(self, queue_name: str) -> int:
        return await self.queue(_spec(queue_name).name).retry_failed()

    async def remove(self, job_id: str) -> None:
        record = await self.get_job(job_id)
        await self._queue_of(record).remove(job_id)

    async def clean(self, queue_name: str, state: JobState, older_than_s: int) -> int:
        return await self.queue(_spec(queue_name).name).clean(state, older_than_s)

    async def list_cron_ticks(self, state: JobState, limit: int, cursor: str | None) -> JobPage:
        """The worker's internal `cron` queue: read-only here, ticks are enqueued by workers."""
        cron = Queue(self._redis, CRON_QUEUE, prefix=self._prefix)
        return await cron.get_jobs(state, limit=limit, cursor=cursor)

    async def queue_health(self, limit: int) -> list[QueueCounts]:
        """The queue-health cron's snapshots, newest first."""
        return await history(self._redis, prefix=self._prefix, limit=limit)

    async def cancel(self, job_id: str) -> JobRecord:
        record = await self.get_job(job_id)
        return await self._queue_of(record).cancel(job_id)

    async def promote(self, job_id: str) -> JobRecord:
        record = await self.get_job(job_id)
        return await self._queue_of(record).promote(job_id)

    async def set_priority(self, job_id: str, priority: int) -> JobRecord:
        record = await self.get_job(job_id)
        return await self._queue_of(record).set_priority(job_id, priority)

    def controls(self, name: QueueName) -> QueueControls:
        """Queue-wide (every organisation's jobs): routes allow them to the operator only."""
        return QueueControls(self._redis, name.value, prefix=self._prefix)

    async def wait(self, job_id: str, timeout_s: float) -> WaitOutcome:
        """Until the job finishes or the time runs out (see forgestack_queue.waiting)."""
        record = await self.get_job(job_id)
        keys = self._keys(record.queue)
        outcome = await wait_for_job(
            self._redis, keys, full_id(self.owner, job_id), timeout_s, owner=self.owner
        )
        if outcome is None:
            raise JobNotFoundError(job_id)
        return outcome

    async def event_cursor(self, queue: QueueName, last_id: str | None) -> str:
        """Where a stream of `queue`'s events starts: after `last_id`, or after the newest event."""
        if last_id is not None:
            return last_id
        return await last_event_id(self._redis, self._keys(queue.value))

    async def events(
        self, queue: QueueName, after: str, block_ms: int
    ) -> tuple[str, list[QueueEvent]]:
        """The next events of `queue` this service's owner may see (all for the operator)."""
        keys = self._keys(queue.value)
        return await read_events(self._redis, keys, after, owner=self.owner, block_ms=block_ms)

    async def latest_event_ids(self, queues: Sequence[str]) -> dict[str, str]:
        """Where streams of several queues' events start to see only what happens next."""
        return await last_event_ids(self._redis, [self._keys(q) for q in queues])

    async def events_of(
        self, after: Mapping[str, str], block_ms: int
    ) -> tuple[dict[str, str], list[QueueEvent]]:
        """`events` of several queues (keyed by name) at once, as this service's owner sees them."""
        keys = [self._keys(q) for q in after]
        return await read_queues(self._redis, keys, after, owner=self.owner, block_ms=block_ms)

    async def workers(self) -> list[WorkerInfo]:
        """Live workers of the whole fleet, as this service's owner may see them: an
        organisation gets counts and its own running jobs, never another's job ids."""
        return [w.for_owner(self.owner) for w in await live_workers(self._redis, self._prefix)]

    def _keys(self, queue: str) -> QueueKeys:
        """The queue's keys in the layout of this service's client (plain or cluster)."""
        return layout_for(self._redis, self._prefix, queue)

    def _queue_of(self, record: JobRecord) -> Queue:
        """A job's own queue, even one the catalog no longer lists (its jobs stay manageable)."""
        spec = spec_for(record.queue)
        if spec is not None:
            return self.queue(spec.name)
        if not record.queue or ":" in record.queue:
            # A damaged record (another Redis type, its queue field gone or rewritten): no queue
            # handle can act on it, so it is a conflict to report, not a server error.
            raise InvalidJobStateError(record.id, "corrupt", "a record that names its queue")
        return Queue(self._redis, record.queue, prefix=self._prefix, owner=self.owner)


def _spec(name: str) -> QueueSpec[Any, Any]:
    spec = spec_for(name)
    if spec is None:
        raise UnknownQueueError(name)
    return spec


def _validate(
    spec: QueueSpec[Any, Any],
    data: Any,
    options: Mapping[str, Any] | None,
    loc: Loc,
) -> tuple[BaseModel, JobOptions]:
    """Data and options are checked together so one answer lists every field error."""
    errors: list[dict[str, Any]] = []
    model: BaseModel | None = None
    opts: JobOptions | None = None
    try:
        model = spec.data_model.model_validate(data, context=PRODUCER_CONTEXT)
    except ValidationError as exc:
        errors.extend(validation_errors(exc, *loc, "data"))
    if not options:
        # The catalog's own object: the job layer serialises each options object once, not per job.
        opts = spec.defaults
    else:
        try:
            opts = JobOptions.model_validate(options).merged_over(spec.defaults)
        except ValidationError as exc:
            errors.extend(validation_errors(exc, *loc, "options"))
    if errors or model is None or opts is None:
        raise JobInputError(errors)
    return model, opts
