"""The apps on a Redis Cluster (REDIS_CLUSTER=true): the API adds and finds jobs through a
cluster client, the worker built from the same settings runs them, and an id two queues hold is
a 409 rather than a guess."""

import httpx
import pytest
from arq.connections import RedisSettings
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.worker import ForgeWorker
from forgestack_shared.settings import Settings
from forgestack_worker.registry import HANDLERS
from pydantic import ValidationError
from redis.asyncio.cluster import RedisCluster

QUEUE = "my-new-job"


async def test_api_and_worker_run_a_job_on_the_cluster(
    cluster_api: httpx.AsyncClient, cluster: RedisCluster, cluster_url: str, queue_prefix: str
) -> None:
    body = {"data": {"user_id": "u1", "action": "greet"}, "options": {"job_id": "dup"}}
    added = await cluster_api.post(f"/api/v1/queues/{QUEUE}/jobs", json=body)
    assert added.status_code == 202, added.text
    job_id = added.json()["id"]
    assert (await cluster_api.get(f"/api/v1/jobs/{job_id}")).json()["state"] == "waiting"
    worker = ForgeWorker(
        handlers=[h for h in HANDLERS if h.queue == QUEUE],
        redis_settings=RedisSettings.from_dsn(cluster_url),
        redis_cluster=True,
        queue_prefix=queue_prefix,
        burst=True,
        handle_signals=False,
    )
    try:
        await worker.async_run()
    finally:
        await worker.close()
    found = (await cluster_api.get(f"/api/v1/jobs/{job_id}")).json()
    assert found["state"] == "completed" and found["queue"] == QUEUE
    # The same custom id in another queue (another shard's, possibly): per-queue unique there.
    await Queue(cluster, "elsewhere", prefix=queue_prefix).add({"x": 1}, JobOptions(job_id="dup"))
    ambiguous = await cluster_api.get("/api/v1/jobs/dup")
    assert ambiguous.status_code == 409
    assert ambiguous.json()["code"] == "ambiguous_job_id"
    assert sorted(ambiguous.json()["queues"]) == ["elsewhere", QUEUE]


def test_a_cluster_needs_a_node_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_CLUSTER", "true")
    monkeypatch.setenv("REDIS_URL", "redis+sentinel://127.0.0.1:26379/main/0")
    with pytest.raises(ValidationError, match="REDIS_CLUSTER=true needs REDIS_URL"):
        Settings()
