"""A credit note's PDF (billing.corrections.credit_note_pdf), read back with pypdf: what a
finance team looks for, drawn by the invoice's layout. Amounts are signed by their effect
on what the customer owes: a credit note's credits negative, an adjustment's charges
positive (docs/invoicing.md, *Signs on the page*)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pypdf

from billing.core.catalog import Account
from billing.core.corrections import adjustment_note, correction_note, void_note
from billing.core.credit_notes import Credited, IssuedInvoice, LineCredited
from billing.core.invoice import Invoice, InvoiceLine
from billing.core.pricing import PriceStep
from billing.core.seller import Issuer
from billing.corrections.credit_note_pdf import render_credit_note_pdf
from tests.unit.test_credit_notes import invoice, issued, line
from tests.unit.test_pdf import readable

ISSUER = Issuer(name="Example Cloud Ltd", address=("1 Main Street",), email="billing@cloud.example")
ACCOUNT = Account.model_validate(
    {
        "id": "acct-1",
        "name": "Acme Corp",
        "email": "billing@acme.example",
        "plan": "pro",
        "timezone": "UTC",
        "tax_rate": "0.2",
    }
)
INVOICE = {
    "invoice_number": "INV-2026-000042",
    "account_id": "acct-1",
    "period": "2026-11",
    "period_start": "2026-11-01T00:00:00+00:00",
    "period_end": "2026-12-01T00:00:00+00:00",
    "issued_at": "2026-12-01T01:15:00Z",
    "currency": "USD",
    "lines": [
        {"kind": "usage", "meter": "api_requests", "description": "API requests",
         "quantity": "1534000", "amount": "6.07"},
        {"kind": "usage", "meter": "exports", "description": "Exports", "quantity": "0",
         "amount": "0.00"},
        {"kind": "fixed", "description": "Pro plan", "quantity": "1", "amount": "49.00"},
        {"kind": "minimum", "description": "Minimum commitment", "quantity": "1",
         "amount": "44.93"},
    ],
    "subtotal": "100.00",
    "tax": "20.00",
    "total": "120.00",
}  # fmt: skip


def test_the_credit_note_pdf_names_itself_the_invoice_it_corrects_and_what_it_credits() -> None:
    # GIVEN CONTRACT.md's example invoice, voided on 10 December
    note = void_note(
        IssuedInvoice.from_document(json.loads(json.dumps(INVOICE))),
        Credited(),
        number="CN-2026-000007",
        reason="Billed twice for November",
        issued_at=datetime(2026, 12, 10, 9, 30, tzinfo=UTC),
    )
    # WHEN it is rendered
    pdf = render_credit_note_pdf(note, ACCOUNT, ISSUER)
    # THEN it is the same bytes each time, one page, titled as a credit note
    assert render_credit_note_pdf(note, ACCOUNT, ISSUER) == pdf
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    assert reader.metadata is not None
    assert reader.metadata.title == "Credit note CN-2026-000007"
    text = readable(reader.pages[0].extract_text())
    # AND it says what it is, what it corrects, when and why
    for expected in (
        "Credit note",
        "Credit note number CN-2026-000007",
        "Date of issue Dec 10, 2026",
        "Corrects invoice INV-2026-000042",
        "Invoice date Dec 1, 2026",
        "Reason Billed twice for November",
        "Service period Nov 1, 2026 – Nov 30, 2026",
        "Bill to Acme Corp",
        "$120.00 credited to invoice INV-2026-000042",
    ):
        assert expected in text, expected
    # AND each line credited, with the invoice line it corrects (1-based, as printed), its
    # quantity and amount negative: taken off the invoice
    for expected in (
        "API requests Invoice line 1 -1,534,000 -$6.07",
        "Pro plan Invoice line 3 -1 -$49.00",
        "Minimum commitment Invoice line 4 -1 -$44.93",
    ):
        assert expected in text, expected
    assert "Exports" not in text  # nothing of it to credit
    # AND the totals, negative, the tax at the account's 20 %; the invoice's before and after
    # (120.00 − 120.00 = 0.00)
    for expected in (
        "Subtotal -$100.00",
        "Tax (20%) -$20.00",
        "Total credited -$120.00",
        "Invoice INV-2026-000042 total $120.00",
        "Invoice total after this credit note $0.00",
        # the seller's default policy on money already paid (refund), with the invoice's
        # total after the note
        "Settlement This credit note reduces invoice INV-2026-000042 by $120.00, to $0.00. "
        "Any amount already paid above $0.00 is refunded to you.",
        # "$" alone could be several currencies: the page names the one it is in
        "Currency US Dollar (USD)",
    ):
        assert expected in text, expected


def test_the_adjustment_pdf_is_titled_and_worded_for_a_charge() -> None:
    # GIVEN the example invoice's plan corrected 49.00 → 52.00: 103.00, tax 20.60, 123.60
    source = IssuedInvoice.from_document(json.loads(json.dumps(INVOICE)))
    corrected = invoice(
        line("usage", "API requests", "1534000", "6.07", meter="api_requests"),
        line("usage", "Exports", "0", "0.00", meter="exports"),
        line("fixed", "Pro plan", "1", "52.00"),
        line("minimum", "Minimum commitment", "1", "44.93"),
        rate="0.2",
    )
    adjustment = adjustment_note(
        source, Credited(), corrected, number="ADJ-2026-000003", correction="rerate:x",
        reason="Plan price raised late", issued_at=datetime(2026, 12, 10, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    pdf = render_credit_note_pdf(adjustment, ACCOUNT, ISSUER)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert reader.metadata is not None
    assert reader.metadata.title == "Adjustment invoice ADJ-2026-000003"
    text = readable(reader.pages[0].extract_text())
    # 3.00 + tax round(103.00 × 0.2) − 20.00 = 0.60: 3.60 due; the invoice comes to 123.60
    for expected in (
        "Adjustment number ADJ-2026-000003",
        "Adjusts invoice INV-2026-000042",
        "Service period Nov 1, 2026 – Nov 30, 2026",
        "Pro plan Invoice line 3 price correction $3.00",  # the same one plan, 3.00 higher
        "Subtotal $3.00",
        "Tax (20%) $0.60",
        "Total due $3.60",
        "Invoice total after this adjustment $123.60",
    ):
        assert expected in text, expected
    assert "credit" not in text.lower()


def test_an_adjustment_after_a_credit_note_shows_where_the_invoice_stood() -> None:
    # GIVEN the example invoice (120.00) already credited 1.07 + tax 0.21 by a credit note:
    # it stands at 118.72; then corrected to 123.60 (the plan 49.00 → 52.00, the API line
    # back at 6.07)
    source = IssuedInvoice.from_document(json.loads(json.dumps(INVOICE)))
    credited = Credited(
        lines={0: LineCredited(Decimal(0), Decimal("1.07"))},
        tax=Decimal("0.21"),
        notes=("CN-2026-000001",),
    )
    corrected = invoice(
        line("usage", "API requests", "1534000", "6.07", meter="api_requests"),
        line("usage", "Exports", "0", "0.00", meter="exports"),
        line("fixed", "Pro plan", "1", "52.00"),
        line("minimum", "Minimum commitment", "1", "44.93"),
        rate="0.2",
    )
    adjustment = adjustment_note(
        source, credited, corrected, number="ADJ-2026-000004", correction="rerate:y",
        reason="Plan price raised late", issued_at=datetime(2026, 12, 10, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    text = readable(
        pypdf.PdfReader(io.BytesIO(render_credit_note_pdf(adjustment, ACCOUNT, ISSUER)))
        .pages[0]
        .extract_text()
    )
    # THEN the page ties out: 120.00, then 118.72 after the credit note, + 4.88 = 123.60
    # (4.07 of lines: 1.07 + 3.00; tax round(103.00 × 0.2) − (20.00 − 0.21) = 0.81)
    for expected in (
        "Invoice INV-2026-000042 total $120.00",
        "Invoice total after earlier corrections $118.72",
        "Total due $4.88",
        "Invoice total after this adjustment $123.60",
    ):
        assert expected in text, expected


def page_text(pdf: bytes) -> str:
    return readable(pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text())


def plan_raised() -> Invoice:
    """The example invoice re-rated with its plan at 52.00 (49.00 issued), taxed at 20 %."""
    return invoice(
        line("usage", "API requests", "1534000", "6.07", meter="api_requests"),
        line("usage", "Exports", "0", "0.00", meter="exports"),
        line("fixed", "Pro plan", "1", "52.00"),
        line("minimum", "Minimum commitment", "1", "44.93"),
        rate="0.2",
    )


def test_an_adjustment_is_a_bill_due_on_the_sellers_terms_with_its_payment_instructions() -> None:
    # GIVEN a seller paid by bank transfer within 14 days
    seller = Issuer(
        name="Example Cloud Ltd",
        email="billing@cloud.example",
        payment_instructions=("Bank transfer to IBAN GB00 EXAM 0000 0000 0000 00",),
        payment_terms_days=14,
    )
    # AND the plan's 3.00 more charged by an adjustment issued on 10 December
    adjustment = adjustment_note(
        IssuedInvoice.from_document(json.loads(json.dumps(INVOICE))), Credited(), plan_raised(),
        number="ADJ-2026-000003", correction="rerate:x", reason="Plan price raised late",
        issued_at=datetime(2026, 12, 10, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    # WHEN it is rendered
    text = page_text(render_credit_note_pdf(adjustment, ACCOUNT, seller))
    # THEN it is due 14 days after its own date of issue (10 + 14 = 24 December), stated as
    # the invoice states its due date, with the seller's payment instructions
    for expected in (
        "Date of issue Dec 10, 2026 Date due Dec 24, 2026",
        "$3.60 due Dec 24, 2026, in addition to invoice INV-2026-000042",
        "Payment This adjustment adds $3.60 to invoice INV-2026-000042. Please pay $3.60 by "
        "Dec 24, 2026, quoting adjustment number ADJ-2026-000003.",
        "Bank transfer to IBAN GB00 EXAM 0000 0000 0000 00",
        "Questions about this adjustment: billing@cloud.example",
    ):
        assert expected in text, expected


def test_a_credit_note_is_no_bill_it_has_no_due_date_nor_payment_instructions() -> None:
    seller = Issuer(email="billing@cloud.example", payment_instructions=("Bank transfer",))
    note = void_note(
        IssuedInvoice.from_document(json.loads(json.dumps(INVOICE))), Credited(),
        number="CN-2026-000007", reason="Billed twice",
        issued_at=datetime(2026, 12, 10, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    text = page_text(render_credit_note_pdf(note, ACCOUNT, seller))
    assert "Date due" not in text
    assert "Bank transfer" not in text


def test_a_line_a_credit_note_charges_back_reads_as_a_charge() -> None:
    # GIVEN usage of 100.00 under a commitment of 70.00, taxed at 20 %: 100.00 + 20.00
    source = issued(invoice(line("usage", "API requests", "100", "100.00", meter="a"), rate="0.2"))
    # AND corrected to 40.00, which the commitment now tops up by 30.00: 70.00 + tax 14.00
    corrected = invoice(
        line("usage", "API requests", "40", "40.00", meter="a"),
        line("minimum", "Minimum commitment", "1", "30.00"),
        rate="0.2",
    )
    note = correction_note(
        source, Credited(), corrected, number="CN-2026-000008", correction="rerate:z",
        reason="Usage counted twice", issued_at=datetime(2026, 12, 10, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    # WHEN it is rendered
    text = page_text(render_credit_note_pdf(note, ACCOUNT, ISSUER))
    # THEN the usage credited reads negative, the commitment now owed positive and "charged";
    # 60.00 − 30.00 = 30.00 credited, tax 20.00 − round(70.00 × 0.2) = 6.00, total 36.00;
    # 120.00 − 36.00 = 84.00
    for expected in (
        "API requests Invoice line 1 -60 -$60.00",
        "Minimum commitment Added by the correction · charged 1 $30.00",
        "Subtotal -$30.00",
        "Tax (20%) -$6.00",
        "Total credited -$36.00",
        "Invoice INV-2026-000042 total $120.00",
        "Invoice total after this credit note $84.00",
    ):
        assert expected in text, expected


def test_a_derived_line_whose_amount_alone_moved_reads_as_an_amount_correction() -> None:
    # GIVEN usage of 100.00 with a 10 % discount (one line of −10.00), no tax: 90.00
    source = issued(
        invoice(
            line("usage", "API requests", "100", "100.00", meter="a"),
            line("discount", "Launch discount 10%", "1", "-10.00", discount="launch"),
        )
    )
    # AND corrected to 80.00 of usage, discounted −8.00: the usage credited 20.00 (20 units),
    # the discount taken back by 2.00, its quantity (1) unchanged; 20.00 − 2.00 = 18.00
    corrected = invoice(
        line("usage", "API requests", "80", "80.00", meter="a"),
        line("discount", "Launch discount 10%", "1", "-8.00", discount="launch"),
    )
    note = correction_note(
        source, Credited(), corrected, number="CN-2026-000009", correction="rerate:w",
        reason="Usage counted twice", issued_at=datetime(2026, 12, 10, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    text = page_text(render_credit_note_pdf(note, ACCOUNT, ISSUER))
    # THEN the discount's line says its amount alone moved (no "0" quantity), and charged
    assert "Launch discount 10% Invoice line 2 · charged amount correction $2.00" in text
    assert "API requests Invoice line 1 -20 -$20.00" in text
    assert "Total credited -$18.00" in text


def test_rate_and_period_in_the_accounts_locale_and_zone_and_a_changed_rate_left_out() -> None:
    # GIVEN the example invoice of a New York account, its period in New York's days
    new_york = {
        **INVOICE,
        "period_start": "2026-11-01T00:00:00-04:00",
        "period_end": "2026-12-01T00:00:00-05:00",
    }
    note = void_note(
        IssuedInvoice.from_document(json.loads(json.dumps(new_york))), Credited(),
        number="CN-2026-000007", reason="Billed twice",
        issued_at=datetime(2026, 12, 10, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    french = ACCOUNT.model_copy(update={"locale": "fr_FR", "timezone": "America/New_York"})
    # WHEN rendered for a French reader
    text = page_text(render_credit_note_pdf(note, french, ISSUER))
    # THEN the period is 1–30 November and the rate 20 %, as Babel writes them in French
    assert "Service period 1 nov. 2026 – 30 nov. 2026" in text
    assert "Tax (20 %) -20,00 $US" in text
    # AND an account whose rate has changed since (25 %: round(100.00 × 0.25) = 25.00, not
    # the invoice's 20.00) gets no rate printed, rather than a wrong one
    raised = ACCOUNT.model_copy(update={"tax_rate": Decimal("0.25")})
    text = page_text(render_credit_note_pdf(note, raised, ISSUER))
    assert "Tax -$20.00" in text
    assert "%" not in text


def _priced(description: str, quantity: str, amount: str, unit_price: str) -> InvoiceLine:
    """A usage line priced at one price per unit (one step over its whole quantity)."""
    steps = (PriceStep("units", Decimal(quantity), Decimal(unit_price), Decimal(amount)),)
    return line("usage", description, quantity, amount, meter="api_requests", steps=steps)


def test_credit_lines_show_the_unit_price_they_stand_at_and_the_json_keeps_it() -> None:
    # GIVEN an invoice of 1,000 requests at $0.05 (50.00) and 10 exports at $2.00 (20.00),
    # re-priced: requests at $0.04 (40.00), exports unchanged but only 8 of them (16.00)
    source = issued(
        invoice(
            _priced("API requests", "1000", "50.00", "0.05"),
            _priced("Exports", "10", "20.00", "2"),
        )
    )
    corrected = invoice(
        _priced("API requests", "1000", "40.00", "0.04"),
        _priced("Exports", "8", "16.00", "2"),
    )
    note = correction_note(
        source, Credited(), corrected, number="CN-2026-000008", correction="rerate:x",
        reason="Price typed wrong", issued_at=datetime(2026, 12, 10, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    # THEN each credit line keeps the price per unit the line is charged at after the note:
    # the new $0.04 for the price correction (1000 × (0.05 − 0.04) = 10.00 credited), the
    # unchanged $2 for the 2 exports taken off (2 × 2 = 4.00)
    lines = note.to_json()["lines"]
    assert [(each["quantity"], each["amount"], each["unit_price"]) for each in lines] == [
        ("0", "10.00", "0.04"),
        ("2", "4.00", "2"),
    ]
    text = page_text(render_credit_note_pdf(note, ACCOUNT, ISSUER))
    assert "API requests Invoice line 1 price correction $0.04 -$10.00" in text
    assert "Exports Invoice line 2 -2 $2.00 -$4.00" in text
    # AND a void credits each line at the price the invoice charged it
    voided = void_note(
        source, Credited(), number="CN-2026-000009", reason="Billed in error",
        issued_at=datetime(2026, 12, 10, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    assert [each["unit_price"] for each in voided.to_json()["lines"]] == ["0.05", "2"]


def test_a_seller_who_sets_credits_against_the_next_invoice_says_so() -> None:
    # GIVEN a seller whose policy is to take credited money off the next invoice
    seller = Issuer(email="billing@cloud.example", credit_settlement="next_invoice")
    note = void_note(
        IssuedInvoice.from_document(json.loads(json.dumps(INVOICE))), Credited(),
        number="CN-2026-000007", reason="Billed twice",
        issued_at=datetime(2026, 12, 10, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    text = page_text(render_credit_note_pdf(note, ACCOUNT, seller))
    assert "Any amount already paid above $0.00 is taken off your next invoice." in text
    assert "refunded" not in text
