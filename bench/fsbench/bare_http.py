"""The HTTP baseline `bench/http_door.py` measures the API against: a bare FastAPI + arq app as a
plain arq user writes one. The route validates a pydantic body (the catalog's own data model, so
both apps do the same validation) and awaits `pool.enqueue_job`; no auth, no audit, no metrics.

Run by uvicorn from the bench: `uvicorn fsbench.bare_http:app` with BENCH_REDIS_URL set."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from fastapi import FastAPI, HTTPException, Request
from forgestack_shared.jobs.my_new_job import MyNewJobData
from pydantic import BaseModel, Field


class EnqueueRequest(BaseModel):
    data: MyNewJobData
    options: dict[str, Any] = Field(default_factory=dict)


class EnqueuedJob(BaseModel):
    id: str
    queue: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await create_pool(RedisSettings.from_dsn(os.environ["BENCH_REDIS_URL"]))
    app.state.pool = pool
    yield
    await pool.aclose()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/queues/{queue}/jobs", status_code=202)
async def enqueue(queue: str, body: EnqueueRequest, request: Request) -> EnqueuedJob:
    pool: ArqRedis = request.app.state.pool
    job = await pool.enqueue_job(queue.replace("-", "_"), body.data.model_dump())
    if job is None:
        raise HTTPException(409, "a job with this id exists")
    return EnqueuedJob(id=job.job_id, queue=queue)
