"""Bearer authentication: the operator key, wrong and missing keys, and a plugged-in key store."""

import uuid

import httpx
import pytest
from fastapi import FastAPI
from forgestack_api.auth import Principal, Role

QUEUES = "/api/v1/queues"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dGVzdC1hZG1pbi1rZXk="},
        {"Authorization": "test-admin-key"},
    ],
    ids=["missing", "wrong", "empty", "basic-scheme", "no-scheme"],
)
async def test_bad_credentials_are_401(anon: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await anon.get(QUEUES, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == "unauthorized"
    assert "test-admin-key" not in response.text


async def test_admin_key_is_accepted(client: httpx.AsyncClient) -> None:
    assert (await client.get(QUEUES)).status_code == 200


async def test_a_prefix_of_the_admin_key_is_rejected(anon: httpx.AsyncClient) -> None:
    response = await anon.get(QUEUES, headers={"Authorization": "Bearer test-admin"})
    assert response.status_code == 401


async def test_no_admin_key_configured_rejects_everything(
    anon: httpx.AsyncClient, app: FastAPI
) -> None:
    """With FORGESTACK_ADMIN_API_KEY unset, no token (not even an empty one) is an admin."""
    app.state.resources.authenticators.clear()
    response = await anon.get(QUEUES, headers={"Authorization": "Bearer test-admin-key"})
    assert response.status_code == 401


async def test_a_plugged_in_member_key_reads_but_may_not_manage(
    anon: httpx.AsyncClient, app: FastAPI
) -> None:
    """The hook the database-backed keys use: an extra authenticator in the chain."""
    org = uuid.uuid4()

    async def member_keys(token: str) -> Principal | None:
        if token == "member-key":
            return Principal(role=Role.MEMBER, org_id=org, key_id="k1", name="ci bot")
        return None

    app.state.resources.authenticators.append(member_keys)
    member = {"Authorization": "Bearer member-key"}
    assert (await anon.get(QUEUES, headers=member)).status_code == 200
    response = await anon.post(f"{QUEUES}/my-new-job/retry-failed", headers=member)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    operator = {"Authorization": "Bearer test-admin-key"}
    assert (
        await anon.post(f"{QUEUES}/my-new-job/retry-failed", headers=operator)
    ).status_code == 200


def test_only_the_operator_is_without_an_organisation() -> None:
    with pytest.raises(ValueError, match="operator"):
        Principal(role=Role.OPERATOR, org_id=uuid.uuid4())
    with pytest.raises(ValueError, match="operator"):
        Principal(role=Role.ADMIN)
    assert Principal(role=Role.ADMIN, org_id=uuid.uuid4()).at_least(Role.OWNER)
    assert not Principal(role=Role.ADMIN, org_id=uuid.uuid4()).at_least(Role.OPERATOR)
