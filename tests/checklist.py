"""The original pattern's checklist as data: what each queue must have, read from the places that
provide it, so `tests/test_job_checklist.py` can name the queue and the item a new job forgot."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
KEDA = ROOT / "infra" / "k8s" / "base" / "keda-scaledobject.yaml"
HANDLER_TESTS = ROOT / "tests" / "worker" / "handlers"

SINGLE_ATTEMPT_QUEUES: dict[str, str] = {}
"""Queues that may run only once, each with the reason; every other queue retries."""


@dataclass(frozen=True)
class Snapshot:
    """Where each item of the checklist lives, for every queue any of them mentions."""

    queue_names: set[str]
    catalog: dict[str, Any]
    functions: dict[str, Any]
    access: set[str]
    keda_queues: set[str]
    handler_tests: set[str]
    single_attempt: dict[str, str] = field(default_factory=dict)

    def all_queues(self) -> set[str]:
        return (
            self.queue_names
            | set(self.catalog)
            | set(self.functions)
            | self.access
            | self.keda_queues
        )


def job_module(queue: str, snapshot: Snapshot) -> str:
    """The handler's module name (`audit_log` for `audit-logs`), else the queue's snake_case."""
    fn = snapshot.functions.get(queue)
    module = getattr(fn, "__module__", "") if fn is not None else ""
    return module.rsplit(".", 1)[-1] if module else queue.replace("-", "_")


def _is_model(model: Any) -> bool:
    return isinstance(model, type) and issubclass(model, BaseModel) and model is not BaseModel


def missing_items(queue: str, snapshot: Snapshot) -> list[str]:
    """Every checklist item `queue` lacks, in the README's order."""
    missing: list[str] = []
    if queue not in snapshot.queue_names:
        missing.append("a QueueName member (forgestack_shared.queues)")
    spec = snapshot.catalog.get(queue)
    if spec is None:
        missing.append("a catalog entry in CATALOG (forgestack_shared.catalog)")
    else:
        if not _is_model(spec.data_model):
            missing.append("a data model (a pydantic BaseModel)")
        if not _is_model(spec.result_model):
            missing.append("a result model (a pydantic BaseModel)")
        attempts = spec.defaults.attempts or 1
        if attempts <= 1 and queue not in snapshot.single_attempt:
            missing.append(
                "a retry policy (defaults.attempts > 1, or a reason in SINGLE_ATTEMPT_QUEUES)"
            )
    if queue not in snapshot.functions:
        missing.append("a registered handler in FUNCTIONS (forgestack_worker.registry)")
    test_module = f"test_{job_module(queue, snapshot)}.py"
    if test_module not in snapshot.handler_tests:
        missing.append(f"a handler test module tests/worker/handlers/{test_module}")
    if queue not in snapshot.access:
        missing.append("an access rule in QUEUE_ACCESS (forgestack_api.access)")
    if queue not in snapshot.keda_queues:
        missing.append(f"a KEDA trigger on its wait set in {KEDA.relative_to(ROOT)}")
    return missing


def keda_queues(path: Path = KEDA) -> set[str]:
    """Queue names of the ScaledObject's triggers: `<prefix>:q:<queue>:wait`."""
    queues: set[str] = set()
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc or doc.get("kind") != "ScaledObject":
            continue
        for trigger in doc["spec"]["triggers"]:
            key = trigger["metadata"]["listName"]
            _, sep, rest = key.partition(":q:")
            if sep and rest.endswith(":wait"):
                queues.add(rest.removesuffix(":wait"))
    return queues


def current() -> Snapshot:
    """The repository as it is."""
    from forgestack_api.access import QUEUE_ACCESS
    from forgestack_shared.catalog import CATALOG
    from forgestack_shared.queues import QueueName
    from forgestack_worker.registry import FUNCTIONS

    return Snapshot(
        queue_names={name.value for name in QueueName},
        catalog={name.value: spec for name, spec in CATALOG.items()},
        functions={f.name: f.coroutine for f in FUNCTIONS},
        access={name.value for name in QUEUE_ACCESS},
        keda_queues=keda_queues(),
        handler_tests={p.name for p in HANDLER_TESTS.glob("test_*.py")},
        single_attempt=SINGLE_ATTEMPT_QUEUES,
    )
