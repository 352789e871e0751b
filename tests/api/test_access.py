"""Every catalog queue states who may add to it and read it: a queue added without an entry would
otherwise fall to a default nobody chose."""

import uuid

import pytest
from fastapi import HTTPException
from forgestack_api.access import QUEUE_ACCESS, access_of, require_enqueue, require_read
from forgestack_api.auth import Principal, Role
from forgestack_shared.catalog import CATALOG
from forgestack_shared.queues import QueueName


def test_every_catalog_queue_has_an_access_rule() -> None:
    missing = [name.value for name in CATALOG if name not in QUEUE_ACCESS]
    assert not missing, f"queues without a rule in forgestack_api.access.QUEUE_ACCESS: {missing}"


def test_jobs_whose_data_names_an_organisation_are_the_operators_to_add() -> None:
    assert access_of("webhook-delivery").enqueue is Role.OPERATOR
    assert access_of("audit-logs").enqueue is Role.OPERATOR
    assert access_of("no-such-queue").enqueue is Role.OPERATOR


def test_a_refusal_names_the_queue_as_clients_spell_it() -> None:
    member = Principal(role=Role.MEMBER, org_id=uuid.uuid4(), key_id="k")
    with pytest.raises(HTTPException) as refused:
        require_enqueue(member, QueueName.AUDIT_LOGS)
    assert refused.value.detail == (
        "adding jobs to 'audit-logs' directly needs the operator role or above"
    )
    with pytest.raises(HTTPException) as refused:
        require_read(member, QueueName.WEBHOOK_DELIVERY)
    assert "'webhook-delivery'" in refused.value.detail
    assert "QueueName" not in refused.value.detail
