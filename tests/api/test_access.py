"""Every catalog queue states who may add to it and read it: a queue added without an entry would
otherwise fall to a default nobody chose."""

from forgestack_api.access import QUEUE_ACCESS, access_of
from forgestack_api.auth import Role
from forgestack_shared.catalog import CATALOG


def test_every_catalog_queue_has_an_access_rule() -> None:
    missing = [name.value for name in CATALOG if name not in QUEUE_ACCESS]
    assert not missing, f"queues without a rule in forgestack_api.access.QUEUE_ACCESS: {missing}"


def test_jobs_whose_data_names_an_organisation_are_the_operators_to_add() -> None:
    assert access_of("webhook-delivery").enqueue is Role.OPERATOR
    assert access_of("audit-logs").enqueue is Role.OPERATOR
    assert access_of("no-such-queue").enqueue is Role.OPERATOR
