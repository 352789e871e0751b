"""`QueueService`: the catalog checks at run time and, through the catalog entry's type parameters, for mypy."""

import textwrap
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from forgestack_api.errors import JobInputError, UnknownQueueError, WrongPayloadTypeError
from forgestack_api.queue_service import QueueService
from forgestack_queue.errors import JobNotFoundError
from forgestack_queue.options import JobOptions
from forgestack_queue.states import JobState
from forgestack_shared.catalog import MY_NEW_JOB
from forgestack_shared.jobs.audit_log import AuditLogData
from forgestack_shared.jobs.my_new_job import MyNewJobData
from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def service(redis: aioredis.Redis, queue_prefix: str) -> QueueService:
    return QueueService(redis, prefix=queue_prefix)


async def _keys(redis: aioredis.Redis, prefix: str) -> list[bytes]:
    return [key async for key in redis.scan_iter(match=f"{prefix}:*")]


async def test_typed_add_merges_options_over_the_catalog_defaults(service: QueueService) -> None:
    data = MyNewJobData(user_id="u1", action="greet")
    added = await service.add(MY_NEW_JOB, data, JobOptions(priority=7))
    job = await service.get_job(added.id)
    assert job.queue == "my-new-job"
    assert job.data == data.model_dump(mode="json")
    assert job.options.priority == 7
    assert job.options.attempts == MY_NEW_JOB.defaults.attempts
    assert job.options.backoff == MY_NEW_JOB.defaults.backoff
    assert job.options.remove_on_fail == MY_NEW_JOB.defaults.remove_on_fail


async def test_add_by_catalog_entry(service: QueueService) -> None:
    added = await service.add(MY_NEW_JOB, MyNewJobData(user_id="u1", action="greet"))
    assert added.state is JobState.WAITING


async def test_a_model_of_another_queue_is_refused_before_redis(
    service: QueueService, redis: aioredis.Redis, queue_prefix: str
) -> None:
    wrong = AuditLogData.model_construct()
    with pytest.raises(WrongPayloadTypeError, match="MyNewJobData"):
        await service.add(MY_NEW_JOB, wrong)  # type: ignore[arg-type]
    assert await _keys(redis, queue_prefix) == []


async def test_an_invalid_instance_is_refused_before_redis(
    service: QueueService, redis: aioredis.Redis, queue_prefix: str
) -> None:
    """`model_construct` skips validation; the service validates again."""
    invalid = MyNewJobData.model_construct(user_id="", action="greet", payload={})
    with pytest.raises(JobInputError) as caught:
        await service.add(MY_NEW_JOB, invalid)
    assert [err["loc"] for err in caught.value.errors] == [["data", "user_id"]]
    assert await _keys(redis, queue_prefix) == []


async def test_raw_add_of_an_unknown_queue(service: QueueService) -> None:
    with pytest.raises(UnknownQueueError):
        await service.add_raw("nope", {"user_id": "u1", "action": "a"})


async def test_bulk_errors_name_each_job(service: QueueService) -> None:
    jobs = [({"user_id": "u1", "action": "a"}, None), ({"user_id": "u2"}, {"attempts": 0})]
    with pytest.raises(JobInputError) as caught:
        await service.add_bulk_raw("my-new-job", jobs)
    assert sorted(tuple(err["loc"]) for err in caught.value.errors) == [
        ("jobs", 1, "data", "action"),
        ("jobs", 1, "options", "attempts"),
    ]


def _mypy(tmp_path: Path, body: str) -> tuple[int, str]:
    source = tmp_path / "snippet.py"
    source.write_text(textwrap.dedent(body))
    out, err, code = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            str(source),
        ]
    )
    return code, out + err


@pytest.mark.timeout(300)
def test_mypy_rejects_a_payload_of_the_wrong_model(tmp_path: Path) -> None:
    code, output = _mypy(
        tmp_path,
        """
        from forgestack_api.queue_service import QueueService
        from forgestack_shared.catalog import MY_NEW_JOB, NOTIFICATION_EMAIL
        from forgestack_shared.jobs.my_new_job import MyNewJobData
        from forgestack_shared.jobs.notification_email import NotificationEmailData


        async def calls(s: QueueService, mine: MyNewJobData, mail: NotificationEmailData) -> None:
            await s.add(MY_NEW_JOB, mine)
            await s.add(NOTIFICATION_EMAIL, mail)
            await s.add(MY_NEW_JOB, mail)  # line 11
            await s.add(NOTIFICATION_EMAIL, mine)  # line 12
        """,
    )
    assert code == 1, output
    errors = [line for line in output.splitlines() if ": error:" in line]
    assert [line.split(":")[1] for line in errors] == ["11", "12"], output


async def test_each_owner_gets_one_service_and_the_kept_ones_are_bounded(
    service: QueueService, monkeypatch: pytest.MonkeyPatch
) -> None:
    org_a, org_b = "6f1c2a4e-8b7d-4c3e-9a5f-2d1e0b9c8a7f", "0b9c8a7f-2d1e-4c3e-9a5f-6f1c2a4e8b7d"
    view = service.for_owner(org_a)
    assert view.owner == org_a
    assert service.for_owner(org_a) is view
    assert view.for_owner(org_a) is view and view.for_owner(None) is service
    other = service.for_owner(org_b)
    assert other is not view and other.owner == org_b
    added = await view.add_raw("my-new-job", {"user_id": "u1", "action": "greet"})
    assert (await view.get_job(added.id)).owner == org_a
    with pytest.raises(JobNotFoundError):
        await other.get_job(added.id)
    monkeypatch.setattr("forgestack_api.queue_service.MAX_VIEWS", 3)
    service.for_owner("c8a7f0b9-2d1e-4c3e-9a5f-6f1c2a4e8b7d")
    assert service.for_owner(org_a) is not view
