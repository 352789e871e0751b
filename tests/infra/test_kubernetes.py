"""infra/k8s: every manifest valid against the Kubernetes schemas (kubernetes-validate, offline)
or, for KEDA's resources, against their CRD's required shape; every variable a real setting;
the worker's grace, probes and queue-depth triggers consistent with the code."""

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from forgestack_queue.keys import QueueKeys
from forgestack_shared.catalog import CATALOG
from redis.asyncio import Redis

from tests.infra.manifests import INFRA, SETTINGS, validate, yaml_documents

K8S = INFRA / "k8s"
BASE = K8S / "base"
KUBERNETES_VERSION = "1.30.0"
SHUTDOWN_MARGIN_S = 5
MANIFESTS = sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")
KEDA_SCHEMAS: dict[str, dict[str, Any]] = {
    "ScaledObject": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "properties": {
                    "scaleTargetRef": {"type": "object", "required": ["name"]},
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer"},
                    "cooldownPeriod": {"type": "integer"},
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "properties": {
                                "type": {"type": "string"},
                                "metadata": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                                "authenticationRef": {"type": "object", "required": ["name"]},
                            },
                        },
                    },
                },
            },
        },
    },
    "TriggerAuthentication": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "spec": {
                "type": "object",
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "items": {"type": "object", "required": ["parameter", "name", "key"]},
                    }
                },
            },
        },
    },
}


def _documents() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in MANIFESTS for doc in yaml_documents(path)]


def _kind(kind: str, name: str | None = None) -> dict[str, Any]:
    return next(
        doc
        for _, doc in _documents()
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    )


def _config() -> dict[str, str]:
    return dict(_kind("ConfigMap", "forgestack-config")["data"])


@pytest.mark.parametrize(
    ("path", "document"), _documents(), ids=lambda v: v.name if isinstance(v, Path) else ""
)
def test_every_manifest_passes_its_schema(path: Path, document: dict[str, Any]) -> None:
    if document["kind"] in KEDA_SCHEMAS:
        validate(document, KEDA_SCHEMAS[document["kind"]])
    else:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_base_manifest() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert {i["name"] for i in kustomization["images"]} == {"forgestack-api", "forgestack-worker"}


def _containers() -> list[tuple[str, dict[str, Any]]]:
    return [
        (doc["metadata"]["name"], container)
        for _, doc in _documents()
        if doc["kind"] in ("Deployment", "Job")
        for container in doc["spec"]["template"]["spec"]["containers"]
    ]


def test_every_variable_set_is_a_real_setting() -> None:
    assert set(_config()) <= SETTINGS
    assert set(_kind("Secret", "forgestack-secrets")["stringData"]) <= SETTINGS
    for name, container in _containers():
        assert {e["name"] for e in container.get("env", [])} <= SETTINGS, name
        refs = {
            ref.get("configMapRef", ref.get("secretRef", {})).get("name")
            for ref in container["envFrom"]
        }
        assert refs == {"forgestack-config", "forgestack-secrets"}, name


def test_the_workers_grace_period_matches_the_worker_shutdown_grace() -> None:
    pod = _kind("Deployment", "forgestack-worker")["spec"]["template"]["spec"]
    grace = int(_config()["WORKER_SHUTDOWN_GRACE_S"])
    assert pod["terminationGracePeriodSeconds"] == grace + SHUTDOWN_MARGIN_S


def test_probes_use_readyz_and_arq_check() -> None:
    api = _kind("Deployment", "forgestack-api")["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    worker = _kind("Deployment", "forgestack-worker")["spec"]["template"]["spec"]["containers"][0]
    check = ["arq", "worker.WorkerSettings", "--check"]
    assert worker["args"] == check[:2]
    assert worker["livenessProbe"]["exec"]["command"] == check
    assert worker["readinessProbe"]["exec"]["command"] == check


def test_pods_run_as_non_root() -> None:
    for _, doc in _documents():
        if doc["kind"] in ("Deployment", "Job"):
            pod = doc["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["runAsUser"] != 0


def test_the_migration_job_upgrades_the_schema() -> None:
    job = _kind("Job", "forgestack-migrate")["spec"]["template"]["spec"]["containers"][0]
    assert job["args"] == ["forgestack", "db", "upgrade"]


def test_keda_scales_the_worker_on_every_queues_wait_set() -> None:
    scaled = _kind("ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "forgestack-worker"
    prefix = _config()["QUEUE_PREFIX"]
    keys = {t["metadata"]["listName"] for t in scaled["spec"]["triggers"]}
    assert keys == {QueueKeys(prefix, queue.value).wait for queue in CATALOG}
    assert all(t["type"] == "redis" for t in scaled["spec"]["triggers"])


def test_the_prometheus_alternative_scales_the_same_deployment() -> None:
    hpa = _kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "forgestack-worker"
    prefix = _config()["QUEUE_PREFIX"]
    text = (K8S / "alternatives" / "hpa-prometheus.yaml").read_text()
    for queue in CATALOG:
        assert QueueKeys(prefix, queue.value).wait in text


async def test_the_wait_key_is_a_sorted_set_whose_size_is_the_waiting_count(
    redis: Redis, queue_prefix: str
) -> None:
    """What KEDA's redis scaler reads: it sizes a sorted set with ZCARD."""
    from forgestack_queue.producer import Queue
    from forgestack_queue.states import JobState
    from forgestack_shared.jobs.my_new_job import MyNewJobData

    queue = Queue(redis, "my-new-job", prefix=queue_prefix)
    for n in range(3):
        await queue.add(MyNewJobData(user_id=f"u{n}", action="greet"))
    key = QueueKeys(queue_prefix, "my-new-job").wait
    assert await redis.type(key) == b"zset"
    assert await redis.zcard(key) == 3 == (await queue.counts())[JobState.WAITING]
