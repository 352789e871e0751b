import asyncio
from datetime import UTC, datetime

import pytest
from forgestack_queue.errors import UnrecoverableError
from forgestack_queue.testing import make_job
from forgestack_shared.jobs.my_new_job import MyNewJobData
from forgestack_worker.handlers.my_new_job import MyNewJobError, handle_my_new_job


async def test_processes_the_job_successfully() -> None:
    before = datetime.now(UTC)
    job = make_job(MyNewJobData(user_id="user-123", action="process", payload={"key": "value"}))
    result = await handle_my_new_job(job)
    assert result.success is True
    assert before <= result.processed_at <= datetime.now(UTC)


async def test_action_fail_raises_so_the_queue_retries() -> None:
    job = make_job(MyNewJobData(user_id="invalid", action="fail"))
    with pytest.raises(MyNewJobError, match="invalid"):
        await handle_my_new_job(job)


async def test_action_fail_permanently_is_unrecoverable() -> None:
    with pytest.raises(UnrecoverableError):
        await handle_my_new_job(make_job(MyNewJobData(user_id="u", action="fail-permanently")))


async def test_action_sleep_waits_the_requested_seconds() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await handle_my_new_job(
        make_job(MyNewJobData(user_id="u", action="sleep", payload={"seconds": 0.2}))
    )
    assert loop.time() - started >= 0.2
