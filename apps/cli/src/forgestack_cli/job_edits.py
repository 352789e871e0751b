"""The edits `forgestack new-job` makes to the registries a job is listed in. Each finds a fixed
anchor in the file and inserts one entry before it; a missing anchor raises, naming the file, so
a reshaped registry fails loudly instead of receiving a half-written job."""

from .job_templates import JobNames

QUEUES = "packages/shared/src/forgestack_shared/queues.py"
CATALOG = "packages/shared/src/forgestack_shared/catalog.py"
REGISTRY = "apps/worker/src/forgestack_worker/registry.py"
ACCESS = "apps/api/src/forgestack_api/access.py"
KEDA = "infra/k8s/base/keda-scaledobject.yaml"
HPA = "infra/k8s/alternatives/hpa-prometheus.yaml"
CRON = "apps/worker/src/forgestack_worker/cron.py"


class AnchorError(RuntimeError):
    """A registry no longer has the line the generator inserts before."""


def insert_before(text: str, anchor: str, entry: str, path: str, *, last: bool = False) -> str:
    at = text.rfind(anchor) if last else text.find(anchor)
    if at < 0:
        raise AnchorError(f"{path}: cannot find {anchor.strip()!r} to add to")
    return text[:at] + entry + text[at:]


def insert_after(text: str, anchor: str, entry: str, path: str) -> str:
    """After the line holding the last occurrence of `anchor`."""
    at = text.rfind(anchor)
    if at < 0:
        raise AnchorError(f"{path}: cannot find {anchor.strip()!r} to add to")
    end = text.index("\n", at) + 1
    return text[:end] + entry + text[end:]


def edit_queues(text: str, n: JobNames) -> str:
    return insert_after(text, ' = "', f'    {n.const} = "{n.queue}"\n', QUEUES)


def edit_catalog(text: str, n: JobNames, attempts: int, backoff: tuple[str, int]) -> str:
    kind, delay = backoff
    spec = f'''{n.const} = QueueSpec(
    name=QueueName.{n.const},
    data_model={n.model}Data,
    result_model={n.model}Result,
    defaults=JobOptions(
        attempts={attempts},
        backoff=Backoff(type="{kind}", delay={delay}),
        remove_on_complete=KEEP_COMPLETED,
        remove_on_fail=KEEP_FAILED,
        timeout=300_000,
    ),
)

'''
    text = insert_after(
        text,
        "from .jobs.",
        f"from .jobs.{n.module} import {n.model}Data, {n.model}Result\n",
        CATALOG,
    )
    text = insert_before(text, "SPECS: tuple[", spec, CATALOG)
    return insert_before(text, ")\nCATALOG: dict[", f"    {n.const},\n", CATALOG)


def edit_registry(text: str, n: JobNames) -> str:
    text = insert_before(
        text, ")\nfrom forgestack_shared.queues import", f"    {n.const},\n", REGISTRY
    )
    text = insert_after(
        text, "from .handlers.", f"from .handlers.{n.module} import {n.handler}\n", REGISTRY
    )
    entry = f"    func(typed({n.const}, {n.handler}), name=QueueName.{n.const}.value),\n"
    return insert_before(text, "]\n\nHANDLERS", entry, REGISTRY)


def edit_access(text: str, n: JobNames, *, operator_only: bool = False) -> str:
    if operator_only:
        entry = (
            "    # Generated: fed by its cron producer; only the operator adds by hand.\n"
            f"    QueueName.{n.const}: QueueAccess(enqueue=Role.OPERATOR, read=Role.OWNER),\n"
        )
    else:
        entry = (
            "    # Generated: any member may add and read; raise `enqueue` to Role.OPERATOR if\n"
            "    # the data names an organisation.\n"
            f"    QueueName.{n.const}: QueueAccess(enqueue=Role.MEMBER, read=Role.MEMBER),\n"
        )
    return insert_before(text, "}\nUNLISTED", entry, ACCESS)


def edit_keda(text: str, n: JobNames) -> str:
    trigger = f"""    - type: redis
      metadata:
        address: redis:6379
        databaseIndex: "0"
        listName: fs:q:{n.queue}:wait
        listLength: "20"
        activationListLength: "1"
      authenticationRef: {{name: forgestack-redis}}
"""
    return insert_before(text, "---\n", trigger, KEDA)


def edit_hpa(text: str, n: JobNames) -> str:
    """The exporter's key list, one line in the alternative's comment."""
    anchor = "--check-single-keys="
    if anchor not in text:
        raise AnchorError(f"{HPA}: cannot find {anchor!r} to add to")
    start = text.index(anchor)
    end = text.index("\n", start)
    return text[:end] + f",db0=fs:q:{n.queue}:wait" + text[end:]
