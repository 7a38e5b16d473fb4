"""`billing invoices void` against the local runtime: one credit note per void, however
often it is asked for, stored beside the invoice, announced and emailed once."""

from __future__ import annotations

import email
import json
from email.policy import default
from typing import Any

import pytest

from billing.store.events import EventPublisher
from billing_cli.local.runtime import LocalAws
from stacks.permissions import FUNCTION_ACTIONS
from tests.e2e.test_calls_within_permissions import recording
from tests.e2e.test_invoice_commands import billing, invoiced

BUCKET = "billing-local-invoices"
__all__ = ["invoiced"]


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every event the functions put on the bus, as (detail type, detail)."""
    events: list[tuple[str, dict[str, Any]]] = []
    original = EventPublisher._put

    def put(self: EventPublisher, batch: Any) -> dict[int, str]:
        events.extend(batch)
        return original(self, batch)

    monkeypatch.setattr(EventPublisher, "_put", put)
    return events


def test_void_issues_one_credit_note_for_the_whole_invoice_and_again_the_same(
    invoiced: LocalAws, published: list[tuple[str, dict[str, Any]]]
) -> None:
    emails_before = len(invoiced.sent_emails())
    # WHEN INV-2026-000001 (236.72 USD) is voided
    result = billing("invoices", "void", "INV-2026-000001", "--reason", "billed twice", "--json")
    # THEN one credit note credits all of it, stored beside the invoice
    assert result.exit_code == 0, result.output
    note = json.loads(result.stdout)
    assert note["credit_note_number"] == "CN-2026-000001"
    assert (note["invoice_number"], note["total"], note["currency"]) == (
        "INV-2026-000001",
        "236.72",
        "USD",
    )
    assert note["json_key"] == "invoices/acct-1/2026-11/CN-2026-000001.json"
    assert (note["new"], note["email"]) == (True, "sent")
    document = json.loads(invoiced.object(BUCKET, note["json_key"]))
    invoice = json.loads(invoiced.object(BUCKET, "invoices/acct-1/2026-11/INV-2026-000001.json"))
    assert document["total"] == invoice["total"] == "236.72"
    assert (document["subtotal"], document["tax"]) == (invoice["subtotal"], invoice["tax"])
    assert document["invoice_total_after"] == "0.00"
    assert document["reason"] == "billed twice"
    assert [line["invoice_line"] for line in document["lines"]] == [
        index
        for index, line in enumerate(invoice["lines"])
        if line["amount"] != "0.00" or line["quantity"] != "0"
    ]
    # AND it was emailed once, with its PDF, and announced once
    sent = invoiced.sent_emails()
    assert len(sent) == emails_before + 1
    message = email.message_from_bytes(sent[-1], policy=default)
    assert " ".join(str(message["Subject"]).split()) == (
        "Credit note CN-2026-000001 for invoice INV-2026-000001: 236.72 USD credited"
    )
    (attachment,) = message.iter_attachments()
    assert attachment.get_content() == invoiced.object(BUCKET, note["pdf_key"])
    issued = [detail for kind, detail in published if kind == "CreditNoteIssued"]
    assert [detail["event_id"] for detail in issued] == ["CreditNoteIssued:CN-2026-000001"]
    assert issued[0]["total"] == "236.72"

    # WHEN it is voided again
    again = billing("invoices", "void", "INV-2026-000001", "--reason", "again", "--json")
    # THEN it is the same credit note: nothing new numbered, stored, announced or emailed
    assert again.exit_code == 0, again.output
    repeat = json.loads(again.stdout)
    assert repeat["credit_note_number"] == "CN-2026-000001"
    assert (repeat["new"], repeat["reason"], repeat["email"]) == (False, "billed twice", "sent")
    assert len(invoiced.sent_emails()) == emails_before + 1
    assert len([kind for kind, _ in published if kind == "CreditNoteIssued"]) == 1

    # AND the next void, of another invoice, takes the next number
    other = billing("invoices", "void", "INV-2026-000002", "--reason", "closed account")
    assert other.exit_code == 0, other.output
    assert "CN-2026-000002 credits" in other.stdout
    assert "s3://billing-local-invoices/ at invoices/acct-2/2026-11/CN-2026-000002.json" in (
        " ".join(other.stdout.split())
    )


def test_void_refuses_an_unknown_invoice_and_an_empty_reason(invoiced: LocalAws) -> None:
    unknown = billing("invoices", "void", "INV-2026-000099", "--reason", "typo")
    assert unknown.exit_code == 2
    assert "no invoice INV-2026-000099" in unknown.output
    assert "Traceback" not in unknown.output

    empty = billing("invoices", "void", "INV-2026-000001", "--reason", "  ")
    assert empty.exit_code == 2
    assert "a credit note needs a reason" in empty.output
    assert "CREDIT_NOTE" not in json.dumps(invoiced.invoices.all_records(), default=str)


def test_every_call_a_void_makes_is_in_the_send_functions_row_of_the_table(
    invoiced: LocalAws,
) -> None:
    # WHEN an invoice is voided, every AWS call recorded with the function that made it
    with recording() as calls:
        result = billing("invoices", "void", "INV-2026-000003", "--reason", "duplicate")
    assert result.exit_code == 0, result.output
    # THEN the Send function made them, only as its row allows (its role on AWS)
    allowed = {c.action for made in FUNCTION_ACTIONS["send_invoices"].values() for c in made}
    assert {"dynamodb:PutItem", "s3:PutObject", "events:PutEvents"} <= calls["send_invoices"]
    assert calls["send_invoices"] <= allowed, sorted(calls["send_invoices"] - allowed)
