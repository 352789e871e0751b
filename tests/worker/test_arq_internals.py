"""The arq internals ForgeStack relies on, checked one by one: when an arq upgrade moves any of
them, this file fails with the name of what moved (arq is pinned to 0.28.x for this reason)."""

import dataclasses
import inspect

import arq
import arq.cli
import arq.connections
import arq.jobs
import arq.utils
import arq.worker
from forgestack_queue.arq_cli import CliWorker, log_config, use_forge_worker
from forgestack_queue.arq_pool import ForgeArqRedis
from forgestack_queue.worker import _ARQ_WORKER


async def noop(ctx: dict[str, object]) -> None:
    return None


def test_arq_is_the_minor_version_the_tests_cover() -> None:
    assert arq.VERSION.startswith("0.28."), f"arq {arq.VERSION}: re-check this file, then re-pin"


def test_the_cli_builds_its_worker_through_the_module_global_worker() -> None:
    use_forge_worker()
    assert arq.cli.create_worker is arq.worker.create_worker
    assert arq.cli.run_worker is arq.worker.run_worker
    assert arq.cli.check_health is arq.worker.check_health
    assert "Worker(**" in inspect.getsource(arq.worker.create_worker)
    worker = arq.worker.create_worker({"functions": [noop], "handle_signals": False})
    assert type(worker) is CliWorker


def test_worker_settings_attributes_are_kept_by_the_workers_signature() -> None:
    use_forge_worker()
    assert "inspect.signature(Worker)" in inspect.getsource(arq.worker.get_kwargs)
    kept = arq.worker.get_kwargs({"queue_prefix": "x", "queue_contracts": {}, "nonsense": 1})
    assert kept == {"queue_prefix": "x", "queue_contracts": {}}


def test_the_cli_configures_logging_through_the_module_global_log_config() -> None:
    use_forge_worker()
    assert "default_log_config(verbose)" in inspect.getsource(arq.cli.cli.callback)  # type: ignore[arg-type]
    assert arq.cli.default_log_config is log_config  # type: ignore[attr-defined]


def test_watch_reload_restarts_the_same_worker_after_sigusr1() -> None:
    source = inspect.getsource(arq.cli.watch_reload)
    for step in ("create_worker(", "handle_sig(Signals.SIGUSR1)", "await worker.close()"):
        assert step in source, step
    assert source.index("await worker.close()") < source.rindex("worker.async_run()")
    # arq's own Worker (the module name may already be bound to ours by another test).
    assert "self._handle_signals" in inspect.getsource(_ARQ_WORKER.close)


def test_enqueue_job_keyword_arguments_are_the_ones_we_serve() -> None:
    ours = inspect.signature(ForgeArqRedis.enqueue_job).parameters
    theirs = inspect.signature(arq.connections.ArqRedis.enqueue_job).parameters
    assert list(ours) == list(theirs)


def test_job_function_and_result_shapes_are_unchanged() -> None:
    assert arq.jobs.Job.__slots__ == ("job_id", "_redis", "_queue_name", "_deserializer")
    assert list(inspect.signature(arq.jobs.Job.__init__).parameters) == [
        "self",
        "job_id",
        "redis",
        "_queue_name",
        "_deserializer",
    ]
    assert [s.value for s in arq.jobs.JobStatus] == [
        "deferred",
        "queued",
        "in_progress",
        "complete",
        "not_found",
    ]
    assert [f.name for f in dataclasses.fields(arq.jobs.JobResult)] == [
        "function",
        "args",
        "kwargs",
        "job_try",
        "enqueue_time",
        "score",
        "job_id",
        "success",
        "result",
        "start_time",
        "finish_time",
        "queue_name",
    ]
    assert [f.name for f in dataclasses.fields(arq.worker.Function)] == [
        "name",
        "coroutine",
        "timeout_s",
        "keep_result_s",
        "keep_result_forever",
        "max_tries",
    ]


def test_create_pool_options_and_helpers_we_call_exist() -> None:
    params = inspect.signature(arq.connections.create_pool).parameters
    assert {"retry", "job_serializer", "job_deserializer"} <= set(params)
    for helper in ("timestamp_ms", "to_ms", "to_unix_ms"):
        assert callable(getattr(arq.utils, helper)), helper


def _same(value: object) -> object:
    return value


def test_arqs_own_keys_and_formats_the_intake_reads_and_writes() -> None:
    """A plain pool's calls (forgestack_queue.arq_intake): arq's key names, its job record and
    result dictionaries, and the order in which its `Job.status()` reads them."""
    import arq.constants as c

    assert (c.default_queue_name, c.job_key_prefix, c.in_progress_key_prefix) == (
        "arq:queue",
        "arq:job:",
        "arq:in-progress:",
    )
    assert (c.result_key_prefix, c.retry_key_prefix) == ("arq:result:", "arq:retry:")
    raw = arq.jobs.serialize_job("f", (1,), {"k": 2}, 3, 1000, serializer=_same)  # type: ignore[arg-type]
    assert raw == {"t": 3, "f": "f", "a": (1,), "k": {"k": 2}, "et": 1000}
    call = arq.jobs.deserialize_job_raw(raw, deserializer=_same)  # type: ignore[arg-type]
    assert call == ("f", (1,), {"k": 2}, 3, 1000)
    params = list(inspect.signature(arq.jobs.serialize_result).parameters)
    assert params == [
        "function", "args", "kwargs", "job_try", "enqueue_time_ms", "success", "result",
        "start_ms", "finished_ms", "ref", "queue_name", "job_id", "serializer",
    ]  # fmt: skip
    status = inspect.getsource(arq.jobs.Job.status)
    order = ["result_key_prefix", "in_progress_key_prefix", "zscore(self._queue_name"]
    assert [status.index(part) for part in order] == sorted(status.index(p) for p in order)
    enqueue = inspect.getsource(arq.connections.ArqRedis.enqueue_job)
    assert "pipe.exists(job_key, result_key_prefix + job_id)" in enqueue
    assert "pipe.psetex(job_key, expires_ms, job)" in enqueue
    assert "pipe.zadd(_queue_name, {job_id: score})" in enqueue
    # arq's own Worker (the module name may already be bound to ours by another test).
    worker = inspect.signature(_ARQ_WORKER).parameters
    assert {"poll_delay", "keep_result", "keep_result_forever", "queue_name"} <= set(worker)
