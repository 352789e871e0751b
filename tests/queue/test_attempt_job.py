"""The Job a handler receives is built without the frozen dataclass's __init__ (job.attempt_job):
it must still be exactly what `Job(...)` builds, every field set, and still frozen."""

from dataclasses import FrozenInstanceError, fields
from datetime import UTC, datetime
from typing import Any

import pytest
from forgestack_queue.job import Job
from forgestack_queue.options import JobOptions
from forgestack_queue.progress import RecordingReporter
from forgestack_queue.runner import ClaimedJob, Handler

from tests.queue.probe import PROBE, ProbeData


async def test_the_attempt_hands_the_handler_a_whole_frozen_job() -> None:
    seen: list[Job[ProbeData]] = []

    async def handle(job: Job[ProbeData]) -> None:
        seen.append(job)

    claimed = ClaimedJob(
        id="j1",
        queue=PROBE,
        name=PROBE,
        data=b'{"tag": "t"}',
        options=JobOptions(attempts=3),
        attempt=2,
        created_at_ms=1_700_000_000_123,
        token="tok",
    )
    ctx: dict[str, Any] = {"redis": None}
    reporter = RecordingReporter()
    outcome = await Handler(PROBE, handle, ProbeData).attempt(claimed, ctx, reporter)
    assert outcome.kind == "completed"
    (job,) = seen
    assert set(vars(job)) == {f.name for f in fields(Job)}
    assert job == Job(
        id="j1",
        queue=PROBE,
        name=PROBE,
        data=ProbeData(tag="t"),
        attempt=2,
        options=JobOptions(attempts=3),
        created_at=datetime.fromtimestamp(1_700_000_000.123, UTC),
        ctx=ctx,
        reporter=reporter,
    )
    assert job.reporter is reporter and job.ctx is ctx
    with pytest.raises(FrozenInstanceError):
        job.attempt = 3  # type: ignore[misc]
    assert job.logger is job.logger  # the cached logger still caches
