"""Fixtures for the Redis Cluster tests: one local 3-master cluster per session, a cluster
client per test on the test's own key prefix, and queue names that hash to different masters."""

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from forgestack_api.main import create_app
from forgestack_queue.connect import cluster_client
from forgestack_queue.keys import QueueKeys
from forgestack_shared.settings import Settings, get_settings
from redis.asyncio.cluster import RedisCluster

from tests.api.conftest import operator_client
from tests.cluster.local_cluster import LocalCluster


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    workdir = Path(tempfile.mkdtemp(prefix="fs-cluster-"))
    cluster = LocalCluster(workdir)
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
async def cluster(cluster_url: str, queue_prefix: str) -> AsyncIterator[RedisCluster]:
    client = cluster_client(cluster_url)
    await client.initialize()
    try:
        yield client
    finally:
        for node in client.get_primaries():
            keys = [
                k
                async for k in client.scan_iter(
                    match=f"{queue_prefix}:*", count=1000, target_nodes=node
                )
            ]
            for key in keys:
                await client.delete(key)
        await client.aclose()


def master_of(client: RedisCluster, prefix: str, queue: str) -> str:
    """The node (host:port) that owns the queue's slot."""
    slot = client.keyslot(QueueKeys(prefix, queue, tagged=True).wait)
    node = client.nodes_manager.get_node_from_slot(slot)
    return str(node.name)


@pytest.fixture
def spread_queues(cluster: RedisCluster, queue_prefix: str) -> list[str]:
    """Three queue names, one per master (the prefix is not in the hash tag: names decide)."""
    by_master: dict[str, str] = {}
    for i in range(200):
        name = f"q{i}"
        by_master.setdefault(master_of(cluster, queue_prefix, name), name)
        if len(by_master) == 3:
            break
    assert len(by_master) == 3, by_master
    return sorted(by_master.values())


@pytest.fixture
async def cluster_api(
    settings: Settings, cluster_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("REDIS_URL", cluster_url)
    monkeypatch.setenv("REDIS_CLUSTER", "true")
    get_settings.cache_clear()
    app: FastAPI = create_app()
    async with app.router.lifespan_context(app), operator_client(app) as client:
        yield client
    get_settings.cache_clear()
