"""Credit lines' unit_price, the credit note's page in scripts the fonts lack, and a
correction that moves charges both ways under a discount."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing import fonts
from billing.core.catalog import Account
from billing.core.corrections import (
    NothingToCredit,
    adjustment_note,
    correction_note,
    split_correction,
    void_note,
)
from billing.core.credit_notes import Credited, IssuedInvoice
from billing.core.invoice import InvoiceLine
from billing.core.pricing import PriceStep
from billing.core.seller import Issuer
from billing.corrections.credit_note_pdf import credit_note_page
from billing.invoicing.document import account_locale
from tests.unit.test_credit_notes import invoice, issued, line

AT = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)


def _per_unit(description: str, meter: str, quantity: str, amount: str, price: str) -> InvoiceLine:
    """A usage line priced at one price per unit (one step over its whole quantity)."""
    step = PriceStep("units", Decimal(quantity), Decimal(price), Decimal(amount))
    return line("usage", description, quantity, amount, meter=meter, steps=(step,))  # type: ignore[arg-type]


def test_a_void_after_a_price_correction_names_no_price_rather_than_the_old_one() -> None:
    # GIVEN 1,000 requests at $0.05 (50.00), corrected to $0.04 (40.00): CN-1 credits
    # 1000 × (0.05 − 0.04) = 10.00 and says the line now stands at $0.04
    source = issued(invoice(_per_unit("API requests", "api", "1000", "50.00", "0.05")))
    corrected = invoice(_per_unit("API requests", "api", "1000", "40.00", "0.04"))
    first = correction_note(
        source, Credited(), corrected, number="CN-2026-000001", correction="rerate:x",
        reason="price typed wrong", issued_at=AT,
    )  # fmt: skip
    assert [each.get("unit_price") for each in first.to_json()["lines"]] == ["0.04"]
    # WHEN the invoice is then voided
    voided = void_note(
        source, Credited().after(first), number="CN-2026-000002", reason="billed in error",
        issued_at=AT,
    )  # fmt: skip
    # THEN it credits 1000 requests, 40.00, and names no unit price: the records keep what
    # each document credited, not the price a re-priced line stands at, and the invoice's
    # $0.05 would read "-1,000 × $0.05 = -$40.00" (docs/invoicing.md, `unit_price`)
    [credited] = voided.to_json()["lines"]
    assert (credited["quantity"], credited["amount"]) == ("1000", "40.00")
    assert "unit_price" not in credited


def test_a_void_of_a_line_an_adjustment_added_names_no_unit_price() -> None:
    # GIVEN 1,000 requests at $0.05 (50.00), then an adjustment that adds 10 exports at
    # $0.30 (3.00), a charge the invoice did not have; the adjustment's line says $0.3
    requests = _per_unit("API requests", "api", "1000", "50.00", "0.05")
    source = issued(invoice(requests))
    corrected = invoice(requests, _per_unit("Exports", "exports", "10", "3.00", "0.3"))
    added = adjustment_note(
        source, Credited(), corrected, number="ADJ-2026-000001", correction="rerate:x",
        reason="exports were not billed", issued_at=AT,
    )  # fmt: skip
    assert [each.get("unit_price") for each in added.to_json()["lines"]] == ["0.3"]
    # WHEN the invoice is voided
    voided = void_note(
        source, Credited().after(added), number="CN-2026-000001", reason="billed in error",
        issued_at=AT,
    )  # fmt: skip
    # THEN the exports' line is credited (10, 3.00) with no unit price (the records keep
    # what the adjustment charged, not its price; docs/invoicing.md), the requests' line,
    # untouched since the invoice, at its $0.05
    lines = voided.to_json()["lines"]
    assert [(each["quantity"], each["amount"]) for each in lines] == [
        ("1000", "50.00"),
        ("10", "3.00"),
    ]
    assert [each.get("unit_price") for each in lines] == ["0.05", None]


@pytest.mark.parametrize(("locale", "currency"), [("th", "THB"), ("ka", "GEL"), ("hy", "AMD")])
def test_the_credit_notes_currency_row_is_drawn_in_the_accounts_locale(
    locale: str, currency: str
) -> None:
    # GIVEN an account writing its documents in Thai (Georgian, Armenian), whose dates
    # the page already writes 2026-12-10 and whose currency symbol (฿) as its code, since
    # the invoice fonts do not draw those scripts
    account = Account.model_validate(
        {"id": "acct-1", "name": "Acme", "email": "billing@acme.example", "plan": "pro",
         "timezone": "UTC", "tax_rate": "0", "locale": locale}
    )  # fmt: skip
    document = json.loads(json.dumps(invoice(line("fixed", "Pro plan", "1", "49.00")).to_json()))
    document["currency"] = currency
    note = void_note(
        IssuedInvoice.from_document(document), Credited(), number="CN-2026-000001",
        reason="billed twice", issued_at=AT,
    )  # fmt: skip
    # WHEN its credit note's page is made
    page = credit_note_page(note, account, Issuer(), account_locale(account))
    # THEN every text of its service block can be drawn: the currency's name in English
    # when the fonts lack its script ("Thai Baht (THB)", not boxes)
    named = dict(page.service)["Currency"]
    assert fonts.missing(named) == [], named


def test_a_credit_note_never_takes_its_invoice_below_zero() -> None:
    # GIVEN storage of 100.00 billed under region eu, 0.00 under us, and a fixed discount of
    # 80.00: subtotal 20.00, tax 20 % 4.00, total 24.00
    def storage(eu: str, us: str) -> tuple[InvoiceLine, ...]:
        return (
            line("usage", "Storage EU", "1000" if eu != "0.00" else "0", eu, meter="storage",
                 filters={"region": ["eu"]}),  # type: ignore[arg-type]
            line("usage", "Storage US", "1000" if us != "0.00" else "0", us, meter="storage",
                 filters={"region": ["us"]}),  # type: ignore[arg-type]
            line("discount", "Discount launch", "1", "-80.00", discount="launch"),
        )  # fmt: skip

    source = issued(invoice(*storage("100.00", "0.00"), rate="0.2"))
    assert str(source.total) == "24.00"
    # WHEN a re-rate moves the usage to region us (same price): the corrected invoice is
    # again 20.00 + 4.00 = 24.00, charges moved both ways
    corrected = invoice(*storage("0.00", "100.00"), rate="0.2")
    # THEN the correction is one document of the net, as when charges move one way: the
    # net is 0 (the total stands at 24.00), so no credit note and no adjustment is issued,
    # rather than a credit note of 120.00 taking the invoice to -96.00 and an adjustment
    # of 120.00 bringing it back
    split = split_correction(source, Credited(), corrected)
    assert (split.credits, split.increases) == ((), ())
    with pytest.raises(NothingToCredit):
        correction_note(
            source, Credited(), corrected, number="CN-2026-000001", correction="rerate:x",
            reason="region moved", issued_at=AT,
        )  # fmt: skip
    # AND when the move also lowers the total (US at 90.00: net 10.00 down), one credit
    # note of the net: 10.00 + tax 2.00, never below zero
    cheaper = invoice(*storage("0.00", "90.00"), rate="0.2")
    note = correction_note(
        source, Credited(), cheaper, number="CN-2026-000001", correction="rerate:y",
        reason="region moved", issued_at=AT,
    )  # fmt: skip
    assert (str(note.total), str(note.invoice_total_after)) == ("12.00", "12.00")
