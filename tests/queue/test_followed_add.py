"""`Queue.add_followed`: a job and its follower (the API's audit event of the add) are written
together by one script call, or not at all; an idempotent repeat adds no second follower."""

import pytest
from forgestack_queue.errors import JobIdInUseError, PayloadTooLargeError
from forgestack_queue.followed import FollowUp
from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.records import JobRecord
from forgestack_queue.scripts import scripts_for
from forgestack_queue.states import JobState
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.queue.probe import PROBE, ProbeData
from tests.queue.reply_proxy import reply_dropping_proxy

OWNER = "org-1"


def _queues(redis: Redis, prefix: str) -> tuple[Queue, Queue]:
    return (
        Queue(redis, PROBE, prefix=prefix, owner=OWNER),
        Queue(redis, "follower", prefix=prefix, owner=OWNER),
    )


class FollowUpFactory:
    """Builds each follower from the new job's id and remembers the ids it was given."""

    def __init__(self, queue: Queue, options: JobOptions | None = None) -> None:
        self.queue, self.options, self.ids = queue, options, list[str]()

    def __call__(self, job_id: str) -> FollowUp:
        self.ids.append(job_id)
        return FollowUp(self.queue, {"added": job_id}, self.options)


async def _waiting(queue: Queue) -> list[JobRecord]:
    return (await queue.get_jobs(JobState.WAITING, limit=100)).jobs


async def test_a_new_job_is_added_with_its_follower(redis: Redis, queue_prefix: str) -> None:
    jobs, followers = _queues(redis, queue_prefix)
    then = FollowUpFactory(followers)
    added, follower = await jobs.add_followed(ProbeData(tag="a"), JobOptions(priority=3), then)
    assert added.created and added.state is JobState.WAITING
    assert then.ids == [added.id]
    assert follower is not None and follower.created
    (record,) = await _waiting(followers)
    assert record.id == follower.id and record.data == {"added": added.id}
    job = await jobs.get_job(added.id)
    assert job is not None and job.priority == 3 and job.data["tag"] == "a"


async def test_the_follower_is_stored_as_a_plain_add_stores_it(
    redis: Redis, queue_prefix: str
) -> None:
    jobs, followers = _queues(redis, queue_prefix)
    options = JobOptions(attempts=7)
    _, follower = await jobs.add_followed(ProbeData(tag="a"), None, FollowUpFactory(followers))
    plain = await followers.add({"added": "x"}, options)
    _, keyed = await jobs.add_followed(
        ProbeData(tag="b"), None, FollowUpFactory(followers, options)
    )
    assert follower is not None and keyed is not None
    one, two = await followers.get_job(plain.id), await followers.get_job(keyed.id)
    assert one is not None and two is not None
    skip = {"id", "data", "created_at", "history"}
    assert one.model_dump(exclude=skip) == two.model_dump(exclude=skip)
    raw_plain = await redis.hgetall(f"{queue_prefix}:job:{OWNER}~{plain.id}")
    raw_keyed = await redis.hgetall(f"{queue_prefix}:job:{OWNER}~{keyed.id}")
    assert raw_plain.keys() == raw_keyed.keys()
    assert raw_plain[b"opts"] == raw_keyed[b"opts"]


async def test_a_repeated_custom_id_adds_no_second_follower(
    redis: Redis, queue_prefix: str
) -> None:
    jobs, followers = _queues(redis, queue_prefix)
    then = FollowUpFactory(followers)
    options = JobOptions(job_id="order-42")
    first, follower = await jobs.add_followed(ProbeData(tag="one"), options, then)
    again, none = await jobs.add_followed(ProbeData(tag="two"), options, then)
    assert first.created and follower is not None
    assert again.id == "order-42" and not again.created and none is None
    assert [r.data for r in await _waiting(followers)] == [{"added": "order-42"}]
    job = await jobs.get_job("order-42")
    assert job is not None and job.data["tag"] == "one"


async def test_a_job_id_of_another_queue_writes_no_follower(
    redis: Redis, queue_prefix: str
) -> None:
    jobs, followers = _queues(redis, queue_prefix)
    other = Queue(redis, "other", prefix=queue_prefix, owner=OWNER)
    await other.add({"n": 1}, JobOptions(job_id="taken"))
    with pytest.raises(JobIdInUseError) as caught:
        await jobs.add_followed(
            ProbeData(tag="x"), JobOptions(job_id="taken"), FollowUpFactory(followers)
        )
    assert caught.value.queue == "other"
    assert await _waiting(followers) == []


async def test_a_follower_that_cannot_be_added_leaves_no_job(
    redis: Redis, queue_prefix: str
) -> None:
    """The follower's id is checked before the job is written: no job is left without it."""
    jobs, followers = _queues(redis, queue_prefix)
    other = Queue(redis, "other", prefix=queue_prefix, owner=OWNER)
    await other.add({"n": 1}, JobOptions(job_id="its-id"))
    clashing = FollowUpFactory(followers, JobOptions(job_id="its-id"))
    with pytest.raises(JobIdInUseError) as caught:
        await jobs.add_followed(ProbeData(tag="x"), JobOptions(job_id="j1"), clashing)
    assert caught.value.job_id == "its-id" and caught.value.queue == "other"
    assert await jobs.get_job("j1") is None
    assert (await jobs.counts())[JobState.WAITING] == 0

    big = FollowUp(followers, {"blob": "x" * (followers.max_payload_bytes + 1)})
    with pytest.raises(PayloadTooLargeError):
        await jobs.add_followed(ProbeData(tag="y"), JobOptions(job_id="j2"), lambda _: big)
    assert await jobs.get_job("j2") is None


async def test_a_lost_reply_then_a_retry_leaves_one_job_and_one_follower(
    redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    """The API's client sees an error (its 503), and retries with the same id: the job and its
    follower were written together, so the retry finds both and adds neither again. With the
    follower a second call, its loss left the job without one for good."""
    sha = scripts_for(redis).add_followed.sha.encode()
    async with reply_dropping_proxy(redis_url) as (proxy, url):
        lossy = Redis.from_url(url)
        try:
            jobs, followers = _queues(lossy, queue_prefix)
            proxy.drop_replies_to(sha, times=1)
            options = JobOptions(job_id="pay-7")
            with pytest.raises(RedisConnectionError):
                await jobs.add_followed(ProbeData(tag="p"), options, FollowUpFactory(followers))
            again, none = await jobs.add_followed(
                ProbeData(tag="p"), options, FollowUpFactory(followers)
            )
        finally:
            await lossy.aclose()
    assert proxy.dropped == 1
    assert not again.created and none is None
    _, followers = _queues(redis, queue_prefix)
    assert [r.data for r in await _waiting(followers)] == [{"added": "pay-7"}]


async def test_a_follower_on_another_client_is_refused(redis: Redis, queue_prefix: str) -> None:
    jobs, _ = _queues(redis, queue_prefix)
    elsewhere = Redis()
    try:
        followers = Queue(elsewhere, "follower", prefix=queue_prefix)
        with pytest.raises(ValueError, match="one client"):
            await jobs.add_followed(ProbeData(tag="x"), None, FollowUpFactory(followers))
    finally:
        await elsewhere.aclose()
    assert (await jobs.counts())[JobState.WAITING] == 0


class CountedFollowUp:
    """Builds a bulk add's follower from the number of new jobs it is given."""

    def __init__(self, queue: Queue) -> None:
        self.queue, self.calls = queue, 0

    def __call__(self, created: int) -> FollowUp:
        self.calls += 1
        return FollowUp(self.queue, {"created": created, "note": "bulk"})


async def test_a_bulk_add_writes_one_follower_that_counts_the_new_jobs(
    redis: Redis, queue_prefix: str
) -> None:
    jobs, followers = _queues(redis, queue_prefix)
    await jobs.add(ProbeData(tag="old"), JobOptions(job_id="kept"))
    batch = [
        (ProbeData(tag="a"), None),
        (ProbeData(tag="b"), JobOptions(job_id="kept")),
        (ProbeData(tag="c"), JobOptions(job_id="fresh")),
    ]
    results, follower = await jobs.add_bulk_followed(batch, CountedFollowUp(followers))
    assert [r.created for r in results] == [True, False, True]
    assert follower is not None and follower.created
    assert [r.data for r in await _waiting(followers)] == [{"created": 2, "note": "bulk"}]


async def test_a_repeated_bulk_add_writes_no_second_follower(
    redis: Redis, queue_prefix: str
) -> None:
    jobs, followers = _queues(redis, queue_prefix)
    batch = [(ProbeData(tag=t), JobOptions(job_id=f"k-{t}")) for t in "xyz"]
    _, first = await jobs.add_bulk_followed(batch, CountedFollowUp(followers))
    again, none = await jobs.add_bulk_followed(batch, CountedFollowUp(followers))
    assert first is not None and none is None
    assert not any(r.created for r in again)
    assert [r.data for r in await _waiting(followers)] == [{"created": 3, "note": "bulk"}]


async def test_a_bulk_lost_reply_then_a_retry_leaves_one_follower_with_the_first_count(
    redis: Redis, redis_url: str, queue_prefix: str
) -> None:
    """The jobs and their counted follower are one call: a retry after a lost reply finds the jobs
    and adds no follower; the first call's follower, counting all three, is there."""
    sha = scripts_for(redis).add_followed.sha.encode()
    batch = [(ProbeData(tag=t), JobOptions(job_id=f"b-{t}")) for t in "pqr"]
    async with reply_dropping_proxy(redis_url) as (proxy, url):
        lossy = Redis.from_url(url)
        try:
            jobs, followers = _queues(lossy, queue_prefix)
            proxy.drop_replies_to(sha, times=1)
            with pytest.raises(RedisConnectionError):
                await jobs.add_bulk_followed(batch, CountedFollowUp(followers))
            again, none = await jobs.add_bulk_followed(batch, CountedFollowUp(followers))
        finally:
            await lossy.aclose()
    assert proxy.dropped == 1
    assert none is None and not any(r.created for r in again)
    _, followers = _queues(redis, queue_prefix)
    assert [r.data for r in await _waiting(followers)] == [{"created": 3, "note": "bulk"}]


async def test_a_bulk_follower_must_hold_the_count_once(redis: Redis, queue_prefix: str) -> None:
    """A follower without the number it was given, or with it twice, is refused before anything
    is written: the script would have no single place to write the count."""
    jobs, followers = _queues(redis, queue_prefix)
    batch = [(ProbeData(tag="a"), JobOptions(job_id="n1"))]
    missing = lambda created: FollowUp(followers, {"created": created + 1})  # noqa: E731
    twice = lambda created: FollowUp(followers, {"a": created, "b": created})  # noqa: E731
    with pytest.raises(ValueError, match="as is"):
        await jobs.add_bulk_followed(batch, missing)
    with pytest.raises(ValueError, match="more than once"):
        await jobs.add_bulk_followed(batch, twice)
    assert await jobs.get_job("n1") is None
    assert await _waiting(followers) == []
