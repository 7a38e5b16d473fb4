"""The lists of an account's credit notes, on moto: usage_api's (GET /accounts/{id}/credit-notes)
and the customer API's (GET /v1/accounts/{id}/credit-notes), its own notes only."""

from __future__ import annotations

import json

import pytest

from billing import wiring
from billing_cli.local.lambdas import LocalContext
from functions.customer_api import app as customer_api
from functions.usage_api import app as usage_api
from tests.integration.conftest import Aws
from tests.integration.test_credit_note_issuing import (
    Died,
    PdfDies,
    Recorded,
    bucket,
    issued_invoice,
    service,
)
from tests.integration.test_usage_api import CONTEXT
from tests.support.api_gateway import customer_event, rest_event

pytestmark = pytest.mark.integration

__all__ = ["bucket"]  # the fixture
CREDIT_NOTES = "/accounts/{account_id}/credit-notes"


def listed(account_id: str) -> tuple[int, dict[str, object]]:
    event = rest_event(CREDIT_NOTES, {"account_id": account_id}, None)
    response = usage_api.handler(event, CONTEXT)
    return response["statusCode"], json.loads(response["body"])


def test_an_account_lists_its_own_credit_notes_and_no_others(
    aws: Aws, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN acct-1's invoice voided, and acct-2's invoice not
    issued_invoice(aws, bucket, "acct-1")
    issued_invoice(aws, bucket, "acct-2")
    service(aws, bucket, Recorded()).void("acct-1", "2026-11", "billed twice")
    monkeypatch.setattr(usage_api, "service", wiring.account_views)

    # WHEN each lists its credit notes
    # THEN acct-1 sees its one credit note; acct-2 none; an unknown account is a 404
    assert listed("acct-1") == (
        200,
        {
            "account_id": "acct-1",
            "credit_notes": [
                {
                    "credit_note_number": "CN-2026-000001",
                    "invoice_number": "INV-2026-000001",
                    "period": "2026-11",
                    "issued_at": "2026-12-10T09:30:00Z",
                    "correction": "void",
                    "status": "stored",
                    "currency": "USD",
                    "subtotal": "100.00",
                    "tax": "20.00",
                    "total": "120.00",
                }
            ],
        },
    )
    assert listed("acct-2") == (200, {"account_id": "acct-2", "credit_notes": []})
    status, body = listed("acct-404")
    assert status == 404, body


def test_a_customer_key_lists_its_own_accounts_credit_notes_and_is_refused_anothers(
    aws: Aws, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN acct-1's invoice voided, and the customer API on the same stores
    issued_invoice(aws, bucket, "acct-1")
    service(aws, bucket, Recorded()).void("acct-1", "2026-11", "billed twice")
    monkeypatch.setattr(customer_api, "service", wiring.customer_views)
    own = {"account_id": "acct-1", "key_id": "a2b3c4d5e6f7g2h3", "kind": "key"}

    def get(path: str) -> tuple[int, dict[str, object]]:
        event = customer_event("GET", path, own)
        response = customer_api.handler(event, LocalContext("customer-api"))
        return response["statusCode"], json.loads(response["body"])

    # WHEN acct-1's key lists acct-1's credit notes, THEN it gets them
    status, body = get("/v1/accounts/acct-1/credit-notes")
    assert status == 200, body
    assert [n["credit_note_number"] for n in body["credit_notes"]] == ["CN-2026-000001"]  # type: ignore[attr-defined]
    # AND another account's are refused as every route refuses them
    assert get("/v1/accounts/acct-2/credit-notes") == (
        403,
        {"statusCode": 403, "message": "this key is not for that account"},
    )


def test_a_customer_key_gets_its_own_credit_note_as_stored_with_a_link_to_its_pdf(
    aws: Aws, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN acct-1's and acct-2's invoices voided, and the customer API on the same stores
    issued_invoice(aws, bucket, "acct-1")
    issued_invoice(aws, bucket, "acct-2")
    service(aws, bucket, Recorded()).void("acct-1", "2026-11", "billed twice")
    service(aws, bucket, Recorded()).void("acct-2", "2026-11", "closed account")
    monkeypatch.setattr(customer_api, "service", wiring.customer_views)
    own = {"account_id": "acct-1", "key_id": "a2b3c4d5e6f7g2h3", "kind": "key"}

    def get(path: str) -> tuple[int, str]:
        response = customer_api.handler(
            customer_event("GET", path, own), LocalContext("customer-api")
        )
        return response["statusCode"], response["body"]

    # WHEN acct-1's key asks for its credit note
    status, body = get("/v1/accounts/acct-1/credit-notes/CN-2026-000001")
    # THEN the document is in the answer byte for byte as stored, with its PDF's link
    assert status == 200, body
    stored = aws.s3.get_object(Bucket=bucket, Key="invoices/acct-1/2026-11/CN-2026-000001.json")
    document = stored["Body"].read().decode().strip()
    assert body.startswith('{"credit_note":' + document + ',"pdf_url":')
    answer = json.loads(body)
    assert (answer["credit_note"]["total"], answer["credit_note"]["reason"]) == (
        "120.00",
        "billed twice",
    )
    assert "invoices/acct-1/2026-11/CN-2026-000001.pdf" in answer["pdf_url"]
    assert "CN-2026-000001.pdf" in answer["pdf_url"].partition("response-content-disposition")[2]
    # AND acct-2's credit note, asked for under acct-1, is not found among acct-1's own
    status, body = get("/v1/accounts/acct-1/credit-notes/CN-2026-000002")
    assert (status, json.loads(body)["message"]) == (
        404,
        "account 'acct-1' has no credit note 'CN-2026-000002'",
    )
    # AND under acct-2's path it is refused before anything is read
    assert get("/v1/accounts/acct-2/credit-notes/CN-2026-000002")[0] == 403


def test_a_credit_note_not_stored_yet_is_listed_numbered_and_its_document_not_found_yet(
    aws: Aws, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a void that stopped once its note was numbered, before its PDF was stored
    issued_invoice(aws, bucket, "acct-1")
    PdfDies.died = False
    with pytest.raises(Died):
        service(aws, bucket, Recorded(), documents=PdfDies).void("acct-1", "2026-11", "typo")
    monkeypatch.setattr(customer_api, "service", wiring.customer_views)
    own = {"account_id": "acct-1", "key_id": "a2b3c4d5e6f7g2h3", "kind": "portal"}

    def get(path: str) -> tuple[int, dict[str, object]]:
        event = customer_event("GET", path, own)
        response = customer_api.handler(event, LocalContext("customer-api"))
        return response["statusCode"], json.loads(response["body"])

    # WHEN its customer lists the notes and asks for this one
    # THEN it is listed as numbered, and its document is not answered until it is stored
    status, body = get("/v1/accounts/acct-1/credit-notes")
    assert status == 200, body
    assert [(n["credit_note_number"], n["status"]) for n in body["credit_notes"]] == [  # type: ignore[attr-defined]
        ("CN-2026-000001", "numbered")
    ]
    assert get("/v1/accounts/acct-1/credit-notes/CN-2026-000001") == (
        404,
        {
            "statusCode": 404,
            "message": "credit note CN-2026-000001 is being issued; try again shortly",
        },
    )
