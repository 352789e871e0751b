"""Payloads that do not decode or validate, corrupt records and unknown job names fail visibly,
without running anything, and the worker keeps going."""

import pickle

from forgestack_queue.options import JobOptions
from forgestack_queue.producer import Queue
from forgestack_queue.states import JobState
from forgestack_queue.testing import run_burst_worker

from tests.queue.probe import Probe, ProbeData


class Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pickle payload executed",))


async def test_a_pickle_payload_fails_without_being_unpickled(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str, capsys: object
) -> None:
    added = await queue.add(ProbeData(tag="victim"), JobOptions(attempts=3))
    await queue.redis.hset(queue.keys.job(added.id), "data", pickle.dumps(Exploit()))
    healthy = await queue.add(ProbeData(tag="healthy"))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.FAILED
    assert job.failed_reason is not None
    assert job.failed_reason.startswith("PayloadError: payload does not validate")
    assert job.attempts_made == 1, "a poisoned payload is not retried"
    assert probe.tags() == ["healthy"]
    done = await queue.get_job(healthy.id)
    assert done is not None and done.state is JobState.COMPLETED
    assert "pickle payload executed" not in capsys.readouterr().out  # type: ignore[attr-defined]


async def test_raw_bytes_replacing_the_whole_record_are_quarantined(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="victim"))
    await queue.redis.delete(queue.keys.job(added.id))
    await queue.redis.set(queue.keys.job(added.id), pickle.dumps(Exploit()))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    assert probe.runs == []
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.FAILED
    assert job.failed_reason == "job record is a Redis string, not a hash: not run"
    assert (await queue.counts())[JobState.FAILED] == 1


async def test_data_that_is_json_but_not_the_model_fails_with_the_field_errors(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add({"tag": 42})
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.FAILED
    assert job.failed_reason is not None
    assert "ProbeData" in job.failed_reason and "tag" in job.failed_reason
    assert probe.runs == []


async def test_a_job_name_with_no_handler_fails_visibly(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="x"), name="no-such-job")
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.FAILED
    assert (
        job.failed_reason == "PayloadError: no handler for job name 'no-such-job' on queue 'probe'"
    )
    assert probe.runs == []


async def test_corrupt_options_fail_the_job_without_running_it(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="x"))
    await queue.redis.hset(queue.keys.job(added.id), "opts", b"\x80\x04not json")
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    job = await queue.get_job(added.id)
    assert job is not None and job.state is JobState.FAILED
    assert job.failed_reason is not None and "options do not validate" in job.failed_reason
    assert probe.runs == []


async def test_nothing_the_layer_writes_is_pickled(
    queue: Queue, probe: Probe, redis_url: str, queue_prefix: str
) -> None:
    added = await queue.add(ProbeData(tag="x"), JobOptions(attempts=2))
    await run_burst_worker(redis_url, [probe.handler()], prefix=queue_prefix)
    raw = await queue.redis.hgetall(queue.keys.job(added.id))
    for value in raw.values():
        assert not value.startswith(b"\x80"), "pickle protocol header found"
        value.decode("utf-8")
