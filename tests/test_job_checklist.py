"""The pattern's checklist, enforced: every queue any registry mentions has all of it, and a queue
that lacks an item fails with the queue's name and the item."""

import dataclasses
from pathlib import Path

import pytest
from forgestack_queue.options import JobOptions

from tests.checklist import Snapshot, current, keda_queues, missing_items

SNAPSHOT = current()


@pytest.mark.parametrize("queue", sorted(SNAPSHOT.all_queues()))
def test_every_queue_has_the_whole_checklist(queue: str) -> None:
    missing = missing_items(queue, SNAPSHOT)
    assert not missing, f"queue {queue!r} lacks: " + "; ".join(missing)


def test_the_checklist_sees_every_shipped_queue() -> None:
    assert {"my-new-job", "notification-email", "audit-logs", "webhook-delivery"} <= (
        SNAPSHOT.all_queues()
    )


Q = "my-new-job"


@pytest.mark.parametrize(
    ("broken", "item"),
    [
        (lambda s: {"queue_names": s.queue_names - {Q}}, "QueueName member"),
        (lambda s: {"catalog": {k: v for k, v in s.catalog.items() if k != Q}}, "catalog entry"),
        (lambda s: {"functions": {k: v for k, v in s.functions.items() if k != Q}}, "FUNCTIONS"),
        (lambda s: {"access": s.access - {Q}}, "QUEUE_ACCESS"),
        (lambda s: {"keda_queues": s.keda_queues - {Q}}, "KEDA trigger"),
        (
            lambda s: {"handler_tests": s.handler_tests - {"test_my_new_job.py"}},
            "tests/worker/handlers/test_my_new_job.py",
        ),
    ],
)
def test_a_missing_item_is_named(broken: object, item: str) -> None:
    snapshot = dataclasses.replace(SNAPSHOT, **broken(SNAPSHOT))  # type: ignore[operator]
    missing = missing_items(Q, snapshot)
    assert len(missing) == 1
    assert item in missing[0]


def _with_spec(**changes: object) -> Snapshot:
    spec = dataclasses.replace(SNAPSHOT.catalog[Q], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(SNAPSHOT, catalog={**SNAPSHOT.catalog, Q: spec})


def test_models_must_be_pydantic_models() -> None:
    missing = missing_items(Q, _with_spec(data_model=dict, result_model=str))
    assert missing == [
        "a data model (a pydantic BaseModel)",
        "a result model (a pydantic BaseModel)",
    ]


def test_a_single_attempt_queue_needs_a_stated_reason() -> None:
    once = _with_spec(defaults=JobOptions(attempts=1))
    assert any("retry policy" in item for item in missing_items(Q, once))
    excused = dataclasses.replace(once, single_attempt={Q: "side effects are not idempotent"})
    assert missing_items(Q, excused) == []


def test_a_queue_known_only_to_the_worker_is_checked_too() -> None:
    stray = dataclasses.replace(SNAPSHOT, functions={**SNAPSHOT.functions, "stray-queue": None})
    assert "stray-queue" in stray.all_queues()
    missing = missing_items("stray-queue", stray)
    assert "a QueueName member (forgestack_shared.queues)" in missing
    assert "a handler test module tests/worker/handlers/test_stray_queue.py" in missing


def test_keda_triggers_are_read_by_their_wait_key(tmp_path: Path) -> None:
    manifest = tmp_path / "keda.yaml"
    manifest.write_text(
        "kind: ScaledObject\nspec:\n  triggers:\n"
        "    - metadata: {listName: 'fs:q:stray-queue:wait'}\n"
        "    - metadata: {listName: 'fs:q:other:delayed'}\n"
    )
    assert keda_queues(manifest) == {"stray-queue"}
