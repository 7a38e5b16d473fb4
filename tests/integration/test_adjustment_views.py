"""An account's adjustment invoices on moto, as its customer and its operators see them: the
usage API's list (GET /accounts/{id}/adjustments) and the customer API's list and document
(GET /v1/accounts/{id}/adjustments[/{number}]), the account's own adjustments only; a
credit note's number is no adjustment's, nor the other way round.

acct-1's invoice (CONTRACT.md's example: 100.00 + 20.00 tax) is corrected both ways by
test_correction_issuing's correction (100.33 + 20.07 tax): a credit note of 2.67 + 0.53 =
3.20 and an adjustment invoice of 3.00 + 0.60 = 3.60 (its arithmetic is there). acct-2,
untaxed, by the same lines: 100.00 → 100.33, a credit note of 2.67 and an adjustment of
3.00."""

from __future__ import annotations

import json
from typing import Any

import pytest

from billing import wiring
from billing.core.credit_notes import ADJUSTMENT
from billing.store.credit_notes import CreditNoteStore
from billing.store.documents import DocumentStore
from billing_cli.local.lambdas import LocalContext
from functions.customer_api import app as customer_api
from functions.usage_api import app as usage_api
from tests.integration.conftest import Aws
from tests.integration.test_correction_issuing import corrected
from tests.integration.test_credit_note_issuing import (
    Died,
    Recorded,
    bucket,
    issued_invoice,
    service,
    table,
)
from tests.integration.test_usage_api import CONTEXT
from tests.support.api_gateway import customer_event, rest_event

pytestmark = pytest.mark.integration

__all__ = ["bucket"]  # the fixture
ADJUSTMENTS = "/accounts/{account_id}/adjustments"
REASON = "re-rated"


def corrected_both_ways(aws: Aws, bucket: str, account: str) -> str:
    """The account's invoice (issued by `issued_invoices`) corrected by a credit note and an
    adjustment; the correction's key."""
    target = corrected().model_copy(update=CORRECTED[account])
    outcome = service(aws, bucket, Recorded()).correct(account, "2026-11", REASON, target)
    return outcome.correction


# acct-1's invoice is the first numbered, acct-2's the second; acct-2 is not taxed.
CORRECTED: dict[str, dict[str, str]] = {
    "acct-1": {},
    "acct-2": {
        "account_id": "acct-2",
        "invoice_number": "INV-2026-000002",
        "tax": "0.00",
        "total": "100.33",
    },
}


def issued_invoices(aws: Aws, bucket: str) -> None:
    """acct-1's invoice (100.00 + 20.00 tax) and acct-2's (100.00, untaxed)."""
    assert issued_invoice(aws, bucket, "acct-1") == "INV-2026-000001"
    assert issued_invoice(aws, bucket, "acct-2", tax="0.00") == "INV-2026-000002"


def listed(account_id: str) -> tuple[int, dict[str, Any]]:
    event = rest_event(ADJUSTMENTS, {"account_id": account_id}, None)
    response = usage_api.handler(event, CONTEXT)
    return response["statusCode"], json.loads(response["body"])


def customer_get(path: str, kind: str = "key") -> tuple[int, str]:
    """`path` asked with acct-1's credential (a key, or a portal link's)."""
    own = {"account_id": "acct-1", "key_id": "a2b3c4d5e6f7g2h3", "kind": kind}
    response = customer_api.handler(customer_event("GET", path, own), LocalContext("customer-api"))
    return response["statusCode"], response["body"]


def not_found(message: str) -> tuple[int, dict[str, Any]]:
    return 404, {"statusCode": 404, "message": message}


def test_the_usage_api_lists_an_accounts_own_adjustments_and_no_others(
    aws: Aws, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN acct-1's and acct-2's invoices each corrected both ways; acct-3's not corrected
    issued_invoices(aws, bucket)
    issued_invoice(aws, bucket, "acct-3")
    key = corrected_both_ways(aws, bucket, "acct-1")
    corrected_both_ways(aws, bucket, "acct-2")
    monkeypatch.setattr(usage_api, "service", wiring.account_views)

    # WHEN each lists its adjustment invoices
    # THEN acct-1 sees its own one, ADJ-2026-000001 (3.00 + 0.60 = 3.60), and not acct-2's
    # ADJ-2026-000002 (3.00); acct-3 none; an unknown account is a 404
    assert listed("acct-1") == (
        200,
        {
            "account_id": "acct-1",
            "adjustments": [
                {
                    "adjustment_number": "ADJ-2026-000001",
                    "invoice_number": "INV-2026-000001",
                    "period": "2026-11",
                    "issued_at": "2026-12-10T09:30:00Z",
                    "correction": key,
                    "status": "stored",
                    "currency": "USD",
                    "subtotal": "3.00",
                    "tax": "0.60",
                    "total": "3.60",
                }
            ],
        },
    )
    assert [(a["adjustment_number"], a["total"]) for a in listed("acct-2")[1]["adjustments"]] == [
        ("ADJ-2026-000002", "3.00")
    ]
    assert listed("acct-3") == (200, {"account_id": "acct-3", "adjustments": []})
    assert listed("acct-404") == not_found("account 'acct-404' is not known")
    # AND the credit-note list still holds the credit notes alone (2.67 + 0.53 = 3.20)
    notes = usage_api.handler(
        rest_event("/accounts/{account_id}/credit-notes", {"account_id": "acct-1"}), CONTEXT
    )
    assert [(n["credit_note_number"], n["total"]) for n in json.loads(notes["body"])[
        "credit_notes"
    ]] == [("CN-2026-000001", "3.20")]  # fmt: skip


def test_an_accounts_adjustments_are_one_query_on_its_key_for_their_prefix(
    aws: Aws, bucket: str
) -> None:
    # GIVEN acct-1's invoice corrected both ways (a credit note and an adjustment)
    issued_invoice(aws, bucket, "acct-1")
    corrected_both_ways(aws, bucket, "acct-1")
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append((model.name, params))

    aws.dynamodb.meta.events.register("before-parameter-build.dynamodb", record)
    try:
        # WHEN the store lists acct-1's adjustments
        found = CreditNoteStore(aws.dynamodb, table(aws)).for_account("acct-1", ADJUSTMENT)
    finally:
        aws.dynamodb.meta.events.unregister("before-parameter-build.dynamodb", record)

    # THEN it is the adjustment alone, read by one Query on the account's key: no Scan
    assert [(each.invoice_number, each.kind, each.corrects) for each in found] == [
        ("ADJ-2026-000001", ADJUSTMENT, "INV-2026-000001")
    ]
    [(operation, body)] = calls
    assert operation == "Query"
    assert body["KeyConditionExpression"] == "pk = :pk AND begins_with(sk, :prefix)"
    assert body["ExpressionAttributeValues"] == {
        ":pk": {"S": "ACCOUNT#acct-1"},
        ":prefix": {"S": "ADJUSTMENT#"},
    }


def test_a_customer_key_lists_its_own_accounts_adjustments_and_is_refused_anothers(
    aws: Aws, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN acct-1's and acct-2's invoices corrected both ways, the customer API on them
    issued_invoices(aws, bucket)
    corrected_both_ways(aws, bucket, "acct-1")
    corrected_both_ways(aws, bucket, "acct-2")
    monkeypatch.setattr(customer_api, "service", wiring.customer_views)

    # WHEN acct-1's key lists acct-1's adjustments, THEN it gets its own one
    status, body = customer_get("/v1/accounts/acct-1/adjustments")
    assert status == 200, body
    [adjustment] = json.loads(body)["adjustments"]
    assert (adjustment["adjustment_number"], adjustment["total"]) == ("ADJ-2026-000001", "3.60")
    # AND acct-2's list is refused as every route refuses another account, unread
    status, body = customer_get("/v1/accounts/acct-2/adjustments")
    assert (status, json.loads(body)) == (
        403,
        {"statusCode": 403, "message": "this key is not for that account"},
    )


def test_a_customer_key_gets_its_own_adjustment_as_stored_and_no_one_elses(
    aws: Aws, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN acct-1's and acct-2's invoices corrected both ways, the customer API on them
    issued_invoices(aws, bucket)
    corrected_both_ways(aws, bucket, "acct-1")
    corrected_both_ways(aws, bucket, "acct-2")
    monkeypatch.setattr(customer_api, "service", wiring.customer_views)

    # WHEN acct-1's key asks for its adjustment invoice
    status, body = customer_get("/v1/accounts/acct-1/adjustments/ADJ-2026-000001")

    # THEN the document is in the answer byte for byte as stored, with its PDF's link
    assert status == 200, body
    stored = aws.s3.get_object(Bucket=bucket, Key="invoices/acct-1/2026-11/ADJ-2026-000001.json")
    document = stored["Body"].read().decode().strip()
    assert body.startswith('{"adjustment":' + document + ',"pdf_url":')
    answer = json.loads(body)
    # 120.00 − 3.20 + 3.60 = 120.40, the corrected total
    assert {name: answer["adjustment"][name] for name in ("total", "reason", "invoice_number")} == {
        "total": "3.60",
        "reason": REASON,
        "invoice_number": "INV-2026-000001",
    }
    assert answer["adjustment"]["invoice_total_after"] == "120.40"
    assert "invoices/acct-1/2026-11/ADJ-2026-000001.pdf" in answer["pdf_url"]
    assert "ADJ-2026-000001.pdf" in answer["pdf_url"].partition("response-content-disposition")[2]
    # AND acct-2's adjustment, asked for under acct-1, is not found among acct-1's own
    status, body = customer_get("/v1/accounts/acct-1/adjustments/ADJ-2026-000002")
    assert (status, json.loads(body)) == not_found(
        "account 'acct-1' has no adjustment invoice 'ADJ-2026-000002'"
    )
    # AND under acct-2's path it is refused before anything is read
    assert customer_get("/v1/accounts/acct-2/adjustments/ADJ-2026-000002")[0] == 403
    # AND a credit note's number is no adjustment's, nor an adjustment's a credit note's
    status, body = customer_get("/v1/accounts/acct-1/adjustments/CN-2026-000001")
    assert (status, json.loads(body)) == not_found(
        "account 'acct-1' has no adjustment invoice 'CN-2026-000001'"
    )
    status, body = customer_get("/v1/accounts/acct-1/credit-notes/ADJ-2026-000001")
    assert (status, json.loads(body)) == not_found(
        "account 'acct-1' has no credit note 'ADJ-2026-000001'"
    )


class AdjustmentPdfDies(DocumentStore):
    """Stops the attempt when it comes to write an adjustment invoice's PDF."""

    def put_new(self, key: str, body: bytes, content_type: str) -> bytes:
        if key.endswith(".pdf") and "/ADJ-" in key:
            raise Died("stopped after the adjustment's JSON was stored")
        return super().put_new(key, body, content_type)


def test_an_adjustment_not_stored_yet_is_listed_numbered_and_its_document_not_found_yet(
    aws: Aws, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a correction that stopped once its adjustment was numbered, before its PDF
    issued_invoice(aws, bucket, "acct-1")
    with pytest.raises(Died):
        service(aws, bucket, Recorded(), documents=AdjustmentPdfDies).correct(
            "acct-1", "2026-11", REASON, corrected()
        )
    monkeypatch.setattr(customer_api, "service", wiring.customer_views)

    # WHEN its customer lists the adjustments (through a portal link) and asks for this one
    status, body = customer_get("/v1/accounts/acct-1/adjustments", kind="portal")

    # THEN it is listed as numbered, and its document is not answered until it is stored
    assert status == 200, body
    assert [(a["adjustment_number"], a["status"]) for a in json.loads(body)["adjustments"]] == [
        ("ADJ-2026-000001", "numbered")
    ]
    status, body = customer_get("/v1/accounts/acct-1/adjustments/ADJ-2026-000001", kind="portal")
    assert (status, json.loads(body)) == not_found(
        "adjustment invoice ADJ-2026-000001 is being issued; try again shortly"
    )
    # AND its credit note, finished before it, is answered
    assert customer_get("/v1/accounts/acct-1/credit-notes/CN-2026-000001", kind="portal")[0] == 200
