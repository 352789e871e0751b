"""The live worker registry: each worker writes its record with a TTL of two heartbeats, so one
that dies (SIGKILL, lost host) drops out within two heartbeats without anyone cleaning up.

Keys: `<prefix>:workers` (sorted set of worker ids by last beat, for listing without SCAN) and
`<prefix>:workers:<id>` (the record, JSON, expiring). A member whose record expired is dead: the
listing skips it and removes it from the set.

A record names the jobs running at its last beat under their full ids (owner included):
`for_owner` is the view an organisation gets, its own jobs only and no host or process."""

import json
import os
import socket
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import cast

from loguru import logger
from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from .keys import is_cluster
from .owners import local_id


def registry_key(prefix: str) -> str:
    return f"{prefix}:workers"


def worker_key(prefix: str, worker_id: str) -> str:
    return f"{prefix}:workers:{worker_id}"


class RunningJob(BaseModel):
    model_config = ConfigDict(defer_build=True)  # listings only: no worker builds it

    id: str
    queue: str


class WorkerInfo(BaseModel):
    model_config = ConfigDict(defer_build=True)  # listings only: workers write plain JSON

    id: str
    host: str | None
    """None in an organisation's view: the fleet's machines are the operator's business."""
    pid: int | None
    queues: list[str]
    concurrency: int
    running: int
    """Attempts running at the last beat (every organisation's)."""
    jobs: list[RunningJob] = []
    """The jobs running at the last beat: all of them for the operator, an organisation's own
    (under its own ids) for its keys."""
    started_at: datetime
    last_beat: datetime

    def for_owner(self, owner: str | None) -> "WorkerInfo":
        """What `owner` may see of this worker (None: the operator, everything)."""
        if owner is None:
            return self
        mine = [
            RunningJob(id=own, queue=job.queue)
            for job in self.jobs
            if (own := local_id(owner, job.id)) is not None
        ]
        return self.model_copy(update={"host": None, "pid": None, "jobs": mine})


class WorkerRegistration:
    """One worker's record. `beat` is called from the worker's loop on every turn and writes at
    most once per interval (one pipelined round trip), never per job."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        worker_id: str,
        *,
        queues: list[str],
        concurrency: int,
        heartbeat_ms: int,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._id = worker_id
        self._interval_s = heartbeat_ms / 1000
        self._next = 0.0
        self._static = {
            "id": worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": queues,
            "concurrency": concurrency,
            "started_at": datetime.now(UTC).isoformat(),
        }

    async def beat(self, running: int, jobs: Iterable[tuple[str, str]]) -> None:
        """`jobs`: (queue, full id) of each running attempt, only read when a beat is due."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self._interval_s
        beat_at = datetime.now(UTC)
        listed = [{"id": job_id, "queue": queue} for queue, job_id in jobs]
        record = json.dumps(
            self._static | {"running": running, "jobs": listed, "last_beat": beat_at.isoformat()}
        )
        async with self._redis.pipeline(transaction=not is_cluster(self._redis)) as pipe:
            pipe.set(worker_key(self._prefix, self._id), record, px=int(self._interval_s * 2000))
            pipe.zadd(registry_key(self._prefix), {self._id: beat_at.timestamp()})
            await pipe.execute()

    async def leave(self) -> None:
        """A clean stop leaves the list at once instead of after two heartbeats."""
        async with self._redis.pipeline(transaction=not is_cluster(self._redis)) as pipe:
            pipe.delete(worker_key(self._prefix, self._id))
            pipe.zrem(registry_key(self._prefix), self._id)
            await pipe.execute()


async def live_workers(redis: Redis, prefix: str) -> list[WorkerInfo]:
    """Workers whose record has not expired, most recent beat first; dead ones are forgotten.

    A record this version cannot read (a newer or older worker during a rolling upgrade) is
    logged and left out: one odd worker must not take the list, and the dashboard with it, down."""
    ids: list[bytes] = await redis.zrevrange(registry_key(prefix), 0, -1)
    if not ids:
        return []
    keys = [worker_key(prefix, i.decode()) for i in ids]
    if is_cluster(redis):
        # Worker records spread over slots: one MGET per slot (a snapshot either way).
        records = await cast(RedisCluster, redis).mget_nonatomic(keys)
    else:
        records = await redis.mget(keys)
    live, dead = [], []
    for worker_id, raw in zip(ids, records, strict=True):
        if raw is None:
            dead.append(worker_id)
        else:
            try:
                live.append(WorkerInfo.model_validate_json(raw))
            except ValidationError as exc:
                logger.warning(
                    "worker {} has an unreadable record, left out: {}",
                    worker_id.decode(errors="replace"),
                    exc.errors(include_url=False, include_input=False)[0]["msg"],
                )
    if dead:
        await redis.zrem(registry_key(prefix), *dead)
    return live
