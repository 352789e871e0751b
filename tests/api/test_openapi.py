"""The document a client generates code from: valid, every catalog queue's model in it, its
examples accepted, and the docs pages working with no network."""

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from forgestack_api.openapi_doc import EXAMPLES
from forgestack_shared.catalog import CATALOG
from openapi_spec_validator import validate


@pytest.fixture
async def document(anon: httpx.AsyncClient) -> dict[str, Any]:
    response = await anon.get("/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


async def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


async def test_each_queue_has_enqueue_operations_with_its_data_model(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    for name, spec in CATALOG.items():
        model = spec.data_model.__name__
        assert model in schemas
        job = schemas[f"{model}Job"]["properties"]
        assert job["data"] == {"$ref": f"#/components/schemas/{model}"}
        assert job["options"]["$ref"] == "#/components/schemas/JobOptions"
        for path in (f"/api/v1/queues/{name.value}/jobs", f"/api/v1/queues/{name.value}/jobs:bulk"):
            body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
            assert f"{model}Job" in str(body["schema"])
    assert "/api/v1/queues/{queue}/jobs:bulk" not in document["paths"]


async def test_the_queues_tag_reads_listing_then_enqueue_then_the_rest(
    document: dict[str, Any],
) -> None:
    """Swagger UI shows a tag's operations in the document's order, whatever order the app
    matches its routes in."""
    queues_tag = [
        (method.upper(), path)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if "queues" in operation.get("tags", [])
    ]
    enqueue = [
        ("POST", f"/api/v1/queues/{name.value}/jobs{bulk}")
        for name in CATALOG
        for bulk in ("", ":bulk")
    ]
    assert queues_tag[0] == ("GET", "/api/v1/queues")
    assert queues_tag[1 : 1 + len(enqueue)] == enqueue
    assert ("GET", "/api/v1/queues/{queue}/jobs") in queues_tag[1 + len(enqueue) :]


async def test_every_api_operation_declares_the_bearer_scheme_and_its_401(
    document: dict[str, Any],
) -> None:
    """The enqueue routes declare the scheme themselves (their dependency calls it, see caller.py):
    the document must not tell them apart from the others."""
    schemes = document["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer <key>`.",
    }
    operations = [
        (path, method, operation)
        for path, methods in document["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in methods.items()
    ]
    assert any(path.endswith("/jobs:bulk") for path, _, _ in operations)
    for path, method, operation in operations:
        assert operation.get("security") == [{"HTTPBearer": []}], (method, path)
        assert "401" in operation["responses"], (method, path)


async def test_job_options_carry_units_and_bounds(document: dict[str, Any]) -> None:
    options = document["components"]["schemas"]["JobOptions"]["properties"]
    assert options["attempts"]["minimum"] == 1 and options["attempts"]["maximum"] == 1000
    assert "milliseconds" in options["delay"]["description"].lower()


async def test_every_error_answer_has_the_one_error_shape(document: dict[str, Any]) -> None:
    error = {"$ref": "#/components/schemas/Error"}
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        for operation in operations.values():
            responses = operation["responses"]
            assert {"401", "403", "503"} <= responses.keys(), path
            if "requestBody" in operation:
                assert {"413", "422"} <= responses.keys(), path
            for code, response in responses.items():
                if int(code) >= 400:
                    assert response["content"]["application/json"]["schema"] == error


async def test_every_documented_example_is_accepted(
    client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    assert EXAMPLES.keys() == CATALOG.keys()
    for name in CATALOG:
        path = f"/api/v1/queues/{name.value}/jobs"
        for suffix in ("", ":bulk"):
            content = document["paths"][path + suffix]["post"]["requestBody"]["content"]
            response = await client.post(path + suffix, json=content["application/json"]["example"])
            assert response.status_code == 202, (name, suffix, response.text)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_every_asset_from_the_app(
    app: FastAPI, anon: httpx.AsyncClient, page: str
) -> None:
    """An HTTP check, not a browser: every script, stylesheet and icon the page names is a path
    on this app and is served; the page names no other host (a CDN would need the network)."""
    html = (await anon.get(page)).text
    assets = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)['"]""", html)
    assets += re.findall(r"""(?:url|spec-url)\s*:\s*['"]([^'"]+)['"]""", html)
    assert any(a.endswith(".js") for a in assets), html
    assert not re.search(r"https?://", " ".join(assets)), assets
    for asset in assets:
        response = await anon.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 100, asset
