"""The operator routes' OpenAPI document (docs/operator-openapi.json): generated from the
handler's routes and models, committed current, and saying what the handler answers."""

from __future__ import annotations

import json
from pathlib import Path

from functions.operator_api import app as operator_api

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_document_is_the_one_the_handler_generates() -> None:
    committed = (ROOT / "docs" / "operator-openapi.json").read_text()

    generated = operator_api.openapi_document()

    assert generated == committed, (
        "docs/operator-openapi.json is stale: the operator routes or their models changed. "
        "Regenerate it with `make openapi` and commit it."
    )


def test_every_route_is_sigv4_and_every_write_answers_409_and_428() -> None:
    document = json.loads(operator_api.openapi_document())

    operations = {
        (method.upper(), path): sorted(operation["responses"])
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }

    assert operations == {
        ("GET", "/operator/accounts"): ["200", "400", "404", "503"],
        ("GET", "/operator/accounts/{account_id}"): ["200", "400", "404", "503"],
        ("PUT", "/operator/accounts/{account_id}"): [
            "200",
            "201",
            "400",
            "404",
            "409",
            "428",
            "503",
        ],
        ("POST", "/operator/accounts/{account_id}/end"): ["200", "400", "404", "409", "428", "503"],
        ("GET", "/operator/catalog"): ["200", "400", "404", "503"],
        ("PUT", "/operator/catalog"): ["200", "201", "400", "404", "409", "428", "503"],
    }
    assert document["security"] == [{"sigv4": []}]
    assert "422" not in json.dumps(document["paths"])


def test_the_writes_name_their_precondition_headers() -> None:
    document = json.loads(operator_api.openapi_document())

    headers = {
        (method.upper(), path): sorted(
            p["name"] for p in operation.get("parameters", []) if p["in"] == "header"
        )
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }

    assert headers[("PUT", "/operator/accounts/{account_id}")] == ["if-match", "if-none-match"]
    assert headers[("PUT", "/operator/catalog")] == ["if-match", "if-none-match"]
    assert headers[("POST", "/operator/accounts/{account_id}/end")] == [
        "if-match",
        "if-none-match",
    ]
