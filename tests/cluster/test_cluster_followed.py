"""`Queue.add_followed` and `add_bulk_followed` on a Redis Cluster: the follower's queue is in
another slot, so the jobs and their follower are two calls (followed.py tells what that leaves open); the outcome a caller sees is
the same as on one Redis: a new job has its follower, a repeat adds none. The API's enqueue route
keeps its one `job.enqueued` event per new job there."""

import httpx
from forgestack_queue.followed import FollowUp
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from redis.asyncio.cluster import RedisCluster

from tests.cluster.conftest import master_of
from tests.cluster.test_cluster_app import QUEUE


async def test_a_job_and_its_follower_on_two_masters(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str
) -> None:
    first, second, _ = spread_queues
    assert master_of(cluster, queue_prefix, first) != master_of(cluster, queue_prefix, second)
    jobs = Queue(cluster, first, prefix=queue_prefix, owner="org-1")
    followers = Queue(cluster, second, prefix=queue_prefix, owner="org-1")

    def then(job_id: str) -> FollowUp:
        return FollowUp(followers, {"added": job_id})

    added, follower = await jobs.add_followed({"n": 1}, JobOptions(job_id="k1"), then)
    again, none = await jobs.add_followed({"n": 2}, JobOptions(job_id="k1"), then)
    fresh, its = await jobs.add_followed({"n": 3}, None, then)
    assert added.created and follower is not None and follower.created
    assert not again.created and none is None
    assert fresh.created and its is not None
    waiting = (await followers.get_jobs(JobState.WAITING)).jobs
    assert sorted(job.data["added"] for job in waiting) == sorted(["k1", fresh.id])


async def test_the_enqueue_route_audits_each_new_job_once_on_the_cluster(
    cluster_api: httpx.AsyncClient, cluster: RedisCluster, queue_prefix: str
) -> None:
    body = {"data": {"user_id": "u1", "action": "greet"}, "options": {"job_id": "c1"}}
    url = f"/api/v1/queues/{QUEUE}/jobs"
    assert (await cluster_api.post(url, json=body)).status_code == 202
    assert (await cluster_api.post(url, json=body)).status_code == 200
    other = (await cluster_api.post(url, json={"data": body["data"]})).json()["id"]
    audit = Queue(cluster, "audit-logs", prefix=queue_prefix)
    events = (await audit.get_jobs(JobState.WAITING)).jobs
    assert sorted(e.data["resource_id"] for e in events) == sorted(["c1", other])
    assert {e.data["action"] for e in events} == {"job.enqueued"}


async def test_a_bulk_add_and_its_counted_follower_on_two_masters(
    cluster: RedisCluster, spread_queues: list[str], queue_prefix: str
) -> None:
    """Two calls here: the count is known from the first call's reply, and a repeat adds none."""
    first, second, _ = spread_queues
    jobs = Queue(cluster, first, prefix=queue_prefix, owner="org-1")
    followers = Queue(cluster, second, prefix=queue_prefix, owner="org-1")

    def then(created: int) -> FollowUp:
        return FollowUp(followers, {"created": created})

    batch = [({"n": n}, JobOptions(job_id=f"b{n}")) for n in range(3)]
    results, follower = await jobs.add_bulk_followed(batch, then)
    again, none = await jobs.add_bulk_followed([*batch, ({"n": 9}, None)], then)
    assert all(r.created for r in results) and follower is not None
    assert [r.created for r in again] == [False, False, False, True] and none is not None
    waiting = (await followers.get_jobs(JobState.WAITING)).jobs
    assert sorted(job.data["created"] for job in waiting) == [1, 3]
    repeat, nothing = await jobs.add_bulk_followed(batch, then)
    assert nothing is None and not any(r.created for r in repeat)
