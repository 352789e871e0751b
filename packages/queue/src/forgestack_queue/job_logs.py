"""The worker's log lines about jobs: a logger bound to a job's fields, for the parts that log
about one (attempts, releases, lost leases), and the line each attempt's outcome gets, with its
metrics and arq's counters. The outcome line is on every job's path, so it builds nothing (no
bound logger) for a completed job while DEBUG is off."""

from typing import TYPE_CHECKING

from loguru import logger

from .metrics import WorkerMetrics, first_wait_s
from .runner import ClaimedJob, Outcome

if TYPE_CHECKING:
    from arq.worker import Worker
    from loguru import Logger


def job_log(job: ClaimedJob) -> "Logger":
    return logger.bind(job_id=job.id, queue=job.queue, attempt=job.attempt)


def log_outcome(
    worker: "Worker", metrics: WorkerMetrics, job: ClaimedJob, outcome: Outcome, ms: float
) -> None:
    """`worker`: whose counters of ended jobs (arq's, which its health check reports) to count
    the outcome in."""
    metrics.outcome(job.queue, outcome.kind, ms / 1000, first_wait_s(job, ms))
    if outcome.kind == "completed":
        worker.jobs_complete += 1
        # The job's fields as keyword arguments (loguru puts them in `extra`, as bind does):
        # unlike a bound logger, nothing is built per job while DEBUG is off.
        logger.debug(
            "completed in {:.1f} ms", ms, job_id=job.id, queue=job.queue, attempt=job.attempt
        )
        return
    log = job_log(job)
    reason = outcome.value.decode("utf-8", "backslashreplace")
    if outcome.kind == "limited":
        log.warning("rate limited by the remote side; queue held for {} ms", outcome.retry_delay_ms)
    elif outcome.kind == "retry":
        worker.jobs_retried += 1
        log.warning(
            "attempt failed in {:.1f} ms, retry in {} ms: {}",
            ms,
            outcome.retry_delay_ms,
            reason,
        )
    else:
        worker.jobs_failed += 1
        log.error("failed in {:.1f} ms: {}", ms, reason)
