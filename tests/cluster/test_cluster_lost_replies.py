"""A script call whose reply is lost on a cluster: redis-py's cluster client re-sends a command
after a connection error by default, which for a claim runs the script twice and leaves the
first run's jobs active under a lease nobody renews. The layer fences lost replies itself (by
token), so the call must reach it as an error, never be re-sent underneath."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlparse

from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.runner import Handler
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from forgestack_queue.testing import make_worker, running
from redis.asyncio.cluster import RedisCluster

from tests.cluster.conftest import master_of
from tests.queue.probe import Probe, ProbeData
from tests.queue.reply_proxy import ReplyDroppingProxy


@contextlib.asynccontextmanager
async def proxied(
    cluster: RedisCluster,
) -> AsyncIterator[tuple[dict[str, ReplyDroppingProxy], RedisCluster]]:
    """A proxy before every master (by its host:port) and a cluster client (redis-py's own
    defaults, as an application would build it) whose every connection goes through them."""
    proxies: dict[str, ReplyDroppingProxy] = {}
    for node in cluster.get_primaries():
        proxy = ReplyDroppingProxy(node.host, int(node.port))
        await proxy.start()
        proxies[str(node.name)] = proxy
    ports = {(p.target[0], p.target[1]): p.port for p in proxies.values()}

    def remap(address: tuple[str, int]) -> tuple[str, int]:
        port = ports.get((address[0], int(address[1])))
        return ("127.0.0.1", port) if port else address

    seed = urlparse(str(next(iter(proxies))).join(["redis://", "/0"]))
    client = RedisCluster(host=seed.hostname, port=seed.port, address_remap=remap)
    try:
        yield proxies, client
    finally:
        await client.aclose()
        for proxy in proxies.values():
            await proxy.stop()


async def test_a_lost_claim_reply_on_a_cluster_spends_no_attempt_and_strands_no_job(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str, cluster_url: str
) -> None:
    name = spread_queues[0]
    queue = Queue(cluster, name, prefix=queue_prefix)
    added = await queue.add(ProbeData(tag="x"), JobOptions(attempts=1))
    claim = scripts_for(cluster).claim
    await cluster.script_load(claim.script)  # every master: the first EVALSHA is the claim
    probe = Probe()
    async with proxied(cluster) as (proxies, client):
        proxy = proxies[master_of(cluster, queue_prefix, name)]
        proxy.drop_replies_to(claim.sha.encode(), times=1)
        worker = make_worker(
            cluster_url,
            [Handler(queue=name, fn=probe.handle, data_model=ProbeData)],
            prefix=queue_prefix,
            burst=False,
            lease_ms=60_000,  # a stranded claim would sit active far past this test's wait
            redis_pool=client,
        )
        async with running(worker):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 8
            while (job := await queue.get_job(added.id)) is None or job.state not in (
                JobState.COMPLETED,
                JobState.FAILED,
            ):
                assert loop.time() < deadline, job
                await asyncio.sleep(0.05)
    assert proxy.dropped == 1
    assert job.state is JobState.COMPLETED and job.attempts_made == 1
    assert [(tag, attempt) for tag, attempt, _ in probe.runs] == [("x", 1)]
