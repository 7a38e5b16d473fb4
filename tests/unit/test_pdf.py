"""The invoice PDF, read back as a reader would: what text is on it, where it is drawn, and
its bytes for the same input. Findings 1-3 of issue 11 each have a test here."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pypdf
import pytest
from babel.numbers import get_decimal_symbol, parse_decimal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf.generic import ContentStream

from billing import fonts
from billing.core.catalog import Account, Accounts, Catalog, parse_catalog
from billing.core.invoice import Invoice, InvoiceLine, build_invoice
from billing.core.locales import locale_of, money_text
from billing.core.money import Money, minor_units
from billing.core.periods import Period
from billing.core.pricing import PriceStep
from billing.core.usage import MeterUsage
from billing.invoicing.document import Issuer, render_invoice_pdf
from billing.invoicing.pdf.canvas import core_widths
from billing_cli.preview import invoice_period, invoice_run_clock, rate_records

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "examples" / "events.jsonl"
PERIOD = Period.parse("2026-11")
ISSUED = datetime(2026, 12, 1, 1, 15, tzinfo=UTC)
SELLER = Issuer(
    "Example Cloud Inc.",
    ("1 Main Street", "Springfield"),
    "US-123",
    "ar@x.example",
    ("Bank transfer to IBAN GB33 BUKB 2020 1555 5555 55",),
)


@pytest.fixture(scope="module")
def invoices(example_catalog: Catalog, example_accounts: Accounts) -> dict[str, Invoice]:
    now = invoice_run_clock(PERIOD, example_accounts)
    run = rate_records(EVENTS.read_bytes().splitlines(), example_catalog, example_accounts, now)
    found = invoice_period(PERIOD, example_catalog, example_accounts, run.ledger, now)
    return {invoice.account_id: invoice for invoice in found}


def pages(pdf: bytes) -> list[pypdf.PageObject]:
    return list(pypdf.PdfReader(io.BytesIO(pdf)).pages)


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pages(pdf))


# What text extraction adds that a reader does not see: pypdf puts a NUL before each glyph
# of a CID font and a control character inside some Devanagari clusters; bidi marks and the
# no-break spaces of locale formats are spacing, not text.
_INVISIBLE = dict.fromkeys([*range(0x20), 0x200E, 0x200F, 0x061C], None)
_SPACES = dict.fromkeys(map(ord, "\u00a0\u202f\n"), " ")


def readable(text: str) -> str:
    return " ".join(text.translate(_SPACES).translate(_INVISIBLE).split())


def contains_words(haystack: str, text: str) -> bool:
    """Each word of `text` is on the page (right-to-left text is extracted in visual order
    of words, so the words, not the whole phrase, are what can be compared)."""
    found = readable(haystack)
    return all(word in found for word in readable(text).split())


def number_of(money: str) -> str:
    """The digits and separators of a formatted amount ('1,234.50' of '$1,234.50')."""
    match = re.search(r"\d[\d.,'’ ]*\d|\d", readable(money))
    assert match, money
    return match.group(0)


# --- reading positions back: nothing drawn over anything else -------------------------------


@dataclass(frozen=True)
class Run:
    page: int
    x: float
    y: float
    width: float
    text: str


def runs(pdf: bytes) -> list[Run]:
    """Each piece of text drawn in a standard font, with where it starts and its width, read
    from the page's content stream (fpdf2 writes `BT x y Td (text) Tj ET`)."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    found: list[Run] = []
    for number, page in enumerate(reader.pages):
        fonts = page["/Resources"]["/Font"]  # type: ignore[index]
        key, size, x, y = "", 0.0, 0.0, 0.0
        for operands, operator in ContentStream(page.get_contents(), reader).operations:
            if operator == b"Tf":
                name = fonts[operands[0]].get_object()["/BaseFont"]  # type: ignore[index]
                key = {"/Helvetica": "helvetica", "/Helvetica-Bold": "helveticaB"}[name]
                size = float(operands[1])
            elif operator == b"Td":
                x, y = float(operands[0]), float(operands[1])
            elif operator == b"Tj":
                raw = operands[0]
                data = raw.original_bytes if hasattr(raw, "original_bytes") else bytes(raw)
                shown = data.decode("cp1252")
                width = sum(core_widths(key).get(c, 0) for c in shown) * size / 1000
                found.append(Run(number, x, y, width, shown))
                x += width  # fpdf2 writes the page count as a second Tj after the first
    assert found
    return found


def assert_nothing_overprints(pdf: bytes) -> None:
    """Every piece of text stays inside the margins, and none overlaps another."""
    page_width = float(pages(pdf)[0].mediabox.width)
    drawn = runs(pdf)
    for run in drawn:
        assert run.x >= 0
        assert run.x + run.width <= page_width - 18 * 72 / 25.4 + 0.5, run
    for a in drawn:
        for b in drawn:
            if a is not b and a.page == b.page and abs(a.y - b.y) < 1 and a.x <= b.x:
                assert a.x + a.width <= b.x + 0.5, (a, b)


# --- invoices built for a test --------------------------------------------------------------


def account(**fields: Any) -> Account:
    return Account.model_validate(
        {
            "id": "acct-t",
            "name": "Test Customer",
            "email": "ap@test.example",
            "plan": "pro",
            "timezone": "UTC",
            **fields,
        }
    )


def invoice_of(lines: Sequence[InvoiceLine], currency: str = "USD", tax: str = "0") -> Invoice:
    subtotal = sum((line.amount for line in lines), Money.zero(currency))
    rate = Decimal(tax)
    taxed = Money(subtotal.amount * rate, currency).rounded()
    return Invoice(
        invoice_number="INV-2026-000042",
        account_id="acct-t",
        period=PERIOD,
        period_start=datetime(2026, 11, 1, tzinfo=UTC),
        period_end=datetime(2026, 12, 1, tzinfo=UTC),
        issued_at=ISSUED,
        currency=currency,
        lines=tuple(lines),
        subtotal=subtotal,
        tax=taxed,
        total=subtotal + taxed,
        tax_rate=rate,
    )


def usage(description: str, amount: str, currency: str = "USD", **extra: Any) -> InvoiceLine:
    value = Decimal(amount)
    return InvoiceLine(
        "usage",
        description,
        Decimal(1000),
        Money(value, currency),
        meter="m",
        unit="request",
        steps=(PriceStep("units", Decimal(1000), value / 1000, value),),
        **extra,
    )


# --- what the page says ---------------------------------------------------------------------


def test_pdf_holds_seller_customer_dates_lines_tiers_totals_and_payment(
    invoices: dict[str, Invoice], example_accounts: Accounts
) -> None:
    # GIVEN the example invoice of acct-1, with a seller that has a tax ID and bank details
    acme = example_accounts.by_id["acct-1"].model_copy(
        update={"billing_address": ["12 Rue de la Paix", "75002 Paris"], "tax_id": "FR40303265045"}
    )
    # WHEN it is rendered
    pdf = render_invoice_pdf(invoices["acct-1"], acme, SELLER)
    text = readable(text_of(pdf))
    # THEN everything a finance team checks is on it, in words and amounts
    assert pdf.startswith(b"%PDF-")
    for expected in (
        "Example Cloud Inc.",
        "1 Main Street",
        "Tax ID: US-123",
        "INV-2026-000001",
        "Date of issue Dec 1, 2026",
        "Date due Dec 31, 2026",  # 30 days' payment terms by default
        "Bill to",
        "Acme Ltd",
        "12 Rue de la Paix",
        "Tax ID: FR40303265045",
        "Nov 1, 2026 – Nov 30, 2026",
        "API requests",
        "1,534,000 request",
        "$6.07",
        "Tier 2",
        "534,000 $0.000002 $1.068",  # tier 2 of the graduated charge: units, price, amount
        "Storage (EU)",
        "region: eu-west-1, eu-central-1",
        "$0.00012",  # a per-unit charge's unit price
        "Pro plan",
        "$49.00",
        "Subtotal $197.27",
        "Tax (20%) $39.45",
        "Total $236.72",
        "Amount due $236.72",
        "Bank transfer to IBAN GB33 BUKB 2020 1555 5555 55",
        "Page 1 of 1",
    ):
        assert expected in text, expected
    # and nothing written for engineers
    assert "rounded once" not in text
    assert "exclusive" not in text
    assert "Europe/Paris" not in text


@pytest.mark.parametrize(
    ("account_id", "name"),
    [
        ("acct-3", "Müller Maschinenbau GmbH"),
        ("acct-6", "Société Océane"),
        ("acct-4", "東京データ株式会社"),
    ],
)
def test_names_in_any_script_render(
    invoices: dict[str, Invoice], example_accounts: Accounts, account_id: str, name: str
) -> None:
    text = text_of(render_invoice_pdf(invoices[account_id], example_accounts.by_id[account_id]))
    assert name in readable(text)


def test_same_invoice_gives_the_same_bytes(
    invoices: dict[str, Invoice], example_accounts: Accounts
) -> None:
    account = example_accounts.by_id["acct-2"]
    assert render_invoice_pdf(invoices["acct-2"], account) == render_invoice_pdf(
        invoices["acct-2"], account
    )
    assert "Minimum commitment" in text_of(render_invoice_pdf(invoices["acct-2"], account))


@pytest.mark.parametrize(
    ("locale", "currency", "amount", "shown", "day"),
    [
        ("fr", "EUR", "1234567.5", "1 234 567,50 €", "1 déc. 2026"),
        ("de", "EUR", "1234567.5", "1.234.567,50 €", "01.12.2026"),
        ("ja", "JPY", "1234567", "￥1,234,567", "2026/12/01"),
        ("en", "KWD", "1234.567", "KWD1,234.567", "Dec 1, 2026"),
        # Arabic and Hebrew formats lose their bidi marks, so that values read in order
        ("ar", "USD", "1414.08", "1,414.08 US$", "01/11/2026 – 30/11/2026"),
        # a month spelt in a right-to-left script would not read in order: digits instead
        ("he", "ILS", "1414.08", "1,414.08 ₪", "1.11.2026 – 30.11.2026"),
    ],
)
def test_amounts_and_dates_follow_the_account_locale(
    locale: str, currency: str, amount: str, shown: str, day: str
) -> None:
    # GIVEN an invoice in a currency, for an account in a locale
    invoice = invoice_of([usage("Compute", amount, currency)], currency)
    # WHEN it is rendered
    text = readable(text_of(render_invoice_pdf(invoice, account(locale=locale))))
    # THEN the amount has its symbol, grouping and minor unit, the date the locale's form
    assert f"Total {shown}" in text
    assert day in text


# --- finding 1: a filter value outside Latin-1 ----------------------------------------------


def test_filter_value_outside_latin1_renders(example_catalog: Catalog) -> None:
    # GIVEN a plan whose charge filters on region 東京, with a Latin-1 account name
    document = example_catalog.model_dump(mode="json")
    document["plans"][0]["charges"][1]["filters"] = {"region": ["東京", "大阪"]}
    catalog = parse_catalog(document)
    plan = catalog.plans[0]
    customer = account(plan=plan.id)
    no_usage: dict[str, MeterUsage] = {}
    # WHEN its invoice is built and rendered
    invoice = build_invoice(
        customer, plan, catalog, PERIOD, no_usage, number="INV-2026-000001", issued_at=ISSUED
    )
    text = readable(text_of(render_invoice_pdf(invoice, customer)))
    # THEN the PDF is made and shows the filter
    assert "region: 東京, 大阪" in text


# --- finding 2: lines and totals never vanish -----------------------------------------------


def test_sixty_lines_all_print_and_the_totals_follow_them() -> None:
    # GIVEN an invoice of 60 lines
    lines = [usage(f"Charge number {n}", f"{n}.{n % 100:02d}") for n in range(1, 61)]
    invoice = invoice_of(lines, tax="0.2")
    # WHEN it is rendered
    pdf = render_invoice_pdf(invoice, account())
    text = readable(text_of(pdf))
    # THEN it runs over several pages, numbered, each line and every total on one of them
    count = len(pages(pdf))
    assert count > 1
    assert f"Page 1 of {count}" in text
    assert f"Page {count} of {count}" in text
    for n, line in enumerate(lines, start=1):
        assert line.description in text
        assert f"${n}.{n % 100:02d}" in text
    # 1 + 2 + ... + 60 = 1,830 dollars and as many cents: 1,848.30; tax 1,848.30 x 0.2 =
    # 369.66; total 2,217.96
    assert "Total $2,217.96" in text
    assert "Amount due $2,217.96" in text
    # and the headings repeat on every page the table continues on
    with_lines = [page.extract_text() for page in pages(pdf)]
    with_lines = [text for text in with_lines if "Charge number" in text]
    assert len(with_lines) > 1
    assert all("Description Qty Unit price Amount" in text for text in with_lines)
    assert_nothing_overprints(pdf)


# --- finding 3: text lost or overprinted ----------------------------------------------------


def test_arabic_name_is_shaped_and_shown() -> None:
    name = "شركة الخليج للتحليلات"
    pdf = render_invoice_pdf(invoice_of([usage("Compute", "10")]), account(name=name, locale="ar"))
    assert contains_words(text_of(pdf), name)
    assert b"NotoSansArabic" in pdf


def test_emoji_are_drawn() -> None:
    pdf = render_invoice_pdf(invoice_of([usage("Rockets 🚀", "10")]), account(name="Party 🎉 Co"))
    text = text_of(pdf)
    assert "🚀" in text
    assert "🎉" in text
    assert b"NotoColorEmoji" in pdf


@pytest.mark.parametrize("name", ['שלום בע"מ', "شركة", "नमस्ते"], ids=["he", "ar", "hi"])
def test_regional_indicator_pairs_that_are_not_flags_render_beside_shaped_text(
    name: str,
) -> None:
    # "BU" and "BX" are no country's flag: shaped, the indicator B is loaded twice
    description = "\U0001f1e7\U0001f1fa \U0001f1e7\U0001f1fd"
    pdf = render_invoice_pdf(invoice_of([usage(description, "1")]), account(name=name))
    assert description in readable(text_of(pdf))


def test_an_emoji_tag_character_that_ends_no_tag_sequence_renders_beside_arabic() -> None:
    description = "x\U000e0067\U0001f468\ufdfa"
    pdf = render_invoice_pdf(
        invoice_of([usage(description, "1")]), account(name="\ufdfa\U0001f468\U000e0067")
    )
    assert "\U0001f468" in readable(text_of(pdf))


DISTINCT_EMOJI = [  # 🐀 on: the first 260 the emoji font draws
    c for c in map(chr, range(0x1F400, 0x1F700)) if fonts.family_for(ord(c)) is fonts.EMOJI
][:260]


def test_250_distinct_emoji_are_drawn_and_those_past_them_written_as_code_points() -> None:
    # GIVEN 52 lines of 5 distinct emoji each: 260 distinct, past the 250 one font holds
    lines = [usage("Charge " + "".join(DISTINCT_EMOJI[n * 5 : n * 5 + 5]), "1") for n in range(52)]
    text = readable(text_of(render_invoice_pdf(invoice_of(lines), account())))
    # THEN the first 50 lines' emoji are drawn, and the last two lines' written out
    assert [line.description in text for line in lines] == [True] * 50 + [False] * 2
    squeezed = "".join(text.split())  # a spelled run is wrapped inside its column
    for n in (50, 51):
        spelled = "".join(f"[U+{ord(c):04X}]" for c in DISTINCT_EMOJI[n * 5 : n * 5 + 5])
        assert f"Charge{spelled}" in squeezed


def test_a_run_past_the_budget_inside_a_longer_one_is_spelled_whole() -> None:
    # GIVEN 250 distinct emoji drawn, then a line with a run past the budget ("📺") and a
    # longer run holding it ("📺📻")
    lines = [usage("Charge " + "".join(DISTINCT_EMOJI[n * 5 : n * 5 + 5]), "1") for n in range(50)]
    tv, radio = DISTINCT_EMOJI[250], DISTINCT_EMOJI[251]
    lines.append(usage(f"Late {tv} and {tv}{radio}", "1"))
    text = readable(text_of(render_invoice_pdf(invoice_of(lines), account())))
    # THEN each run is spelled whole, never the short one inside the long one
    spelled_tv, spelled_radio = f"[U+{ord(tv):04X}]", f"[U+{ord(radio):04X}]"
    squeezed = "".join(text.split())  # a spelled run may wrap inside its column
    assert f"Late{spelled_tv}and{spelled_tv}{spelled_radio}" in squeezed


def test_same_bytes_whatever_the_string_hash_seed() -> None:
    # Sets of strings iterate in an order that changes with PYTHONHASHSEED: render the same
    # invoice, with spelled emoji, in two interpreters with different seeds
    script = (
        "import hashlib\n"
        "from tests.unit.test_pdf import account, invoice_of, usage, DISTINCT_EMOJI as E\n"
        "from billing.invoicing.document import render_invoice_pdf\n"
        "lines = [usage('C ' + ''.join(E[n * 5 : n * 5 + 5]), '1') for n in range(52)]\n"
        "lines.append(usage(f'Late {E[250]} and {E[250]}{E[251]}', '1'))\n"
        "print(hashlib.sha256(render_invoice_pdf(invoice_of(lines), account())).hexdigest())\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-W", "ignore", "-c", script],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert len(digests) == 1


@pytest.mark.parametrize(
    ("currency", "locale", "amount"),
    [
        ("KWD", "en", "99999999999999999999.000"),
        ("USD", "hi", "9999999999999999999999.00"),
        ("JPY", "en", "99999999999999999999999999"),
    ],
)
def test_a_total_wider_than_the_amount_column_is_set_smaller_not_broken(
    currency: str, locale: str, amount: str
) -> None:
    value = Decimal(amount)
    line = InvoiceLine(
        "usage",
        "Compute",
        Decimal(1),
        Money(value, currency),
        meter="m",
        unit="request",
        steps=(PriceStep("units", Decimal(1), value, value),),
    )
    invoice = invoice_of([line], currency)
    pdf = render_invoice_pdf(invoice, account(locale=locale))
    shown = readable(money_text(invoice.total.amount, currency, locale_of(locale)))
    text = readable(text_of(pdf))
    assert f"Total {shown}" in text
    assert f"Amount due {shown}" in text
    if locale == "en":
        assert_nothing_overprints(pdf)


def test_flags_shaped_beside_arabic_are_budgeted_in_one_render(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN 100 charges of 128 flag sequences each (676 distinct flags from 26 code points),
    # for an account with an Arabic name: shaped, each flag is a glyph of its own
    from billing.invoicing import document

    renders = []
    original = document._render

    def counted(*args: Any) -> bytes:
        renders.append(1)
        return original(*args)

    monkeypatch.setattr(document, "_render", counted)
    letters = [chr(0x1F1E6 + n) for n in range(26)]
    pairs = [a + b for a in letters for b in letters]
    lines = [
        usage("".join(pairs[(n * 37 + k) % len(pairs)] for k in range(128)), "1")
        for n in range(100)
    ]
    # WHEN rendered, THEN once (the budget counts a glyph per flag), with the total on it
    pdf = render_invoice_pdf(invoice_of(lines), account(name="شركة"))
    assert "$100.00" in readable(text_of(pdf))
    assert len(renders) == 1


EVERY_KIND = "👨‍👩‍👧 👍🏽 1️⃣ 🇫🇷 🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f 🚀"


@pytest.mark.parametrize("locale", ["en", "ar", "he", "hi", "ja"])
def test_emoji_of_every_kind_in_every_field_render_and_read_back(locale: str) -> None:
    issuer = Issuer(
        "Seller 🚀 شركة",
        ("1 Main 🏠 St", "Springfield 🇺🇸"),
        "TAX-🆔",
        "ar@x.example",
        ("Pay 💰 by transfer 🏦",),
    )
    customer = account(
        name="Acme " + EVERY_KIND + " אקמה",
        locale=locale,
        billing_address=["12 Rue 🥐 " + EVERY_KIND, "नमस्ते 🙏"],
        tax_id="FR 🆔 403",
    )
    quantity, value = Decimal(1000), Decimal("12.5")
    lines = [
        InvoiceLine(
            "usage",
            f"Line {n} {EVERY_KIND}",
            quantity,
            Money(value, "USD"),
            meter="m",
            unit="req 📨",
            filters={"region 🌍": ["eu 🇪🇺", "us 🇺🇸"]},
            steps=(PriceStep("units 🧮", quantity, value / quantity, value),),
        )
        for n in range(20)
    ]
    text = text_of(render_invoice_pdf(invoice_of(lines, "USD", "0.2"), customer, issuer))
    for line in lines:
        assert contains_words(text, fonts.drawable(line.description))
    assert contains_words(text, fonts.drawable(customer.name))
    assert contains_words(text, issuer.address[1])


def test_flags_past_what_the_colour_font_holds_when_shaped_still_render() -> None:
    # GIVEN 300 two-letter flag sequences (26 code points, but one glyph per flag once
    # shaped, which an Arabic name turns on) on 60 lines
    letters = [chr(0x1F1E6 + n) for n in range(26)]
    pairs = [a + b for a in letters for b in letters][:300]
    lines = [usage("Flag " + " ".join(pairs[n * 5 : n * 5 + 5]), "1") for n in range(60)]
    # WHEN rendered, THEN there is a PDF with every line and the total on it
    text = readable(text_of(render_invoice_pdf(invoice_of(lines), account(name="شركة"))))
    assert text.count("Flag ") == 60
    assert "$60.00" in text


def test_a_quantity_with_18_digits_and_12_decimals_is_printed_whole() -> None:
    quantity = Decimal("123456789012345678.123456789012")
    line = InvoiceLine(
        "usage",
        "Storage",
        quantity,
        Money(Decimal("1.23"), "USD"),
        meter="m",
        unit="GB-hour",
        steps=(PriceStep("units", quantity, Decimal("0.00000000001"), Decimal("1.23")),),
    )
    pdf = render_invoice_pdf(invoice_of([line]), account())
    assert "123,456,789,012,345,678.123456789012" in readable(text_of(pdf))
    assert_nothing_overprints(pdf)


def test_200_character_name_wraps_inside_the_page() -> None:
    name = " ".join(["Internationale"] * 14)[:200]
    description = " ".join(["Very long description"] * 11)
    pdf = render_invoice_pdf(invoice_of([usage(description, "10")]), account(name=name))
    assert contains_words(text_of(pdf), name)
    assert contains_words(text_of(pdf), description)
    assert_nothing_overprints(pdf)


def test_several_filter_values_wrap_in_their_column() -> None:
    filters = {
        "region": ["eu-west-1", "eu-central-1", "eu-north-1", "eu-south-1", "eu-west-2"],
        "tier": ["gold", "silver", "bronze"],
    }
    pdf = render_invoice_pdf(invoice_of([usage("Storage", "1234.56", filters=filters)]), account())
    assert contains_words(text_of(pdf), "eu-west-1, eu-central-1, eu-north-1, eu-south-1")
    assert_nothing_overprints(pdf)


def test_large_amounts_never_overprint_the_totals_labels() -> None:
    lines = [usage("Compute", "987654321098765432.10"), usage("Storage", "123456789012345678.90")]
    invoice = invoice_of(lines, tax="0.25")
    pdf = render_invoice_pdf(invoice, account())
    # 987,654,321,098,765,432.10 + 123,456,789,012,345,678.90 = 1,111,111,110,111,111,111.00;
    # tax x 0.25 = 277,777,777,527,777,777.75; total 1,388,888,887,638,888,888.75
    assert "$1,388,888,887,638,888,888.75" in readable(text_of(pdf))
    assert_nothing_overprints(pdf)


def test_bold_text_outside_latin1_is_set_in_a_bold_face() -> None:
    pdf = render_invoice_pdf(invoice_of([usage("Compute", "10")]), account(name="Ωmega Ltd"))
    fonts = {
        str(font.get_object()["/BaseFont"])
        for page in pages(pdf)
        for font in page["/Resources"]["/Font"].values()  # type: ignore[index,union-attr]
    }
    assert {name.partition("+")[2] for name in fonts} == {"NotoSans", "NotoSansBold"}


# --- every script, 1, 20 and 200 lines ------------------------------------------------------

SCRIPTS = {
    "latin": ("en", "Datenübertragung Europa"),
    "cjk": ("ja", "東京データ転送"),
    "arabic": ("ar", "نقل البيانات"),
    "hebrew": ("he", "העברת נתונים"),
    "devanagari": ("hi", "डेटा स्थानांतरण"),
}


@pytest.mark.parametrize("count", [1, 20, 200])
@pytest.mark.parametrize("script", list(SCRIPTS))
def test_every_line_and_the_total_are_on_the_pdf(script: str, count: int) -> None:
    # GIVEN an invoice of `count` lines described in one script, for a reader of it
    locale, words = SCRIPTS[script]
    lines = [usage(f"{words} {n}", f"{n * 37}.{n % 100:02d}") for n in range(1, count + 1)]
    invoice = invoice_of(lines, tax="0.1")
    customer = account(name=f"{words} Ltd", locale=locale)
    # WHEN it is rendered
    pdf = render_invoice_pdf(invoice, customer)
    text = text_of(pdf)
    found = readable(text)
    # THEN every line's description and amount, and the total, are on it
    for line in lines:
        assert contains_words(text, line.description), line.description
        shown = money_text(line.amount.amount, "USD", locale_of(locale))
        assert number_of(shown) in found, shown
    total = number_of(money_text(invoice.total.amount, "USD", locale_of(locale)))
    assert total in found
    assert parse_decimal(total, locale=locale) == invoice.total.amount
    assert f"Page {len(pages(pdf))} of {len(pages(pdf))}" in found


def test_text_extraction_helpers_see_what_is_drawn() -> None:
    # The helpers above must not pass by accident: a word that is not drawn is not found.
    pdf = render_invoice_pdf(invoice_of([usage("Compute", "10")]), account())
    assert not contains_words(text_of(pdf), "Storage")
    assert readable("a\u00a0b\x00c") == "a bc"
    with pytest.raises(AssertionError):
        assert_nothing_overprints(_overprinted())


def _overprinted() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=9)
    pdf.text(20, 20, "Quantity 1234")
    pdf.text(25, 20, "Amount")
    return bytes(pdf.output())


# --- any invoice renders, and its total reads back ------------------------------------------

ALPHABETS = {
    "latin": "abcdefghijklmnopqrstuvwxyz ABCDEFXYZ0123456789-&.,'ÀÉÎÕÜßçñ€",
    "cjk": "東京大阪データ株式会社転送情報한국어",
    "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي ",
    "hebrew": "אבגדהוזחטיכלמנסעפצקרשת ",
    "devanagari": "कखगघचछजझटठडढणतथदधनपफबभमयरलवशसह ािीुूेैोौं्",
    "emoji": "🚀🎉👍❤️🌍 ",
}
CURRENCIES = ["USD", "EUR", "JPY", "KWD", "GBP", "INR", "CHF"]
LOCALES = ["en", "fr", "de", "ja", "ar", "he", "hi", "zh_Hant", "de_CH", "pt_BR"]


def _prints(text: str) -> bool:
    """What validation takes as not blank: some character beyond marks and spaces."""
    return any(unicodedata.category(c) not in {"Mn", "Me", "Cf", "Zs"} for c in text)


def names() -> st.SearchStrategy[str]:
    return st.sampled_from(list(ALPHABETS)).flatmap(
        lambda script: (
            st.text(alphabet=ALPHABETS[script] + " Ltd", min_size=1, max_size=200)
            .map(str.strip)
            .filter(_prints)
        )
    )


@st.composite
def invoices_and_accounts(draw: st.DrawFn) -> tuple[Invoice, Account]:
    currency = draw(st.sampled_from(CURRENCIES))
    places = minor_units(currency)
    amounts = st.integers(0, 10**15 * 10**places).map(lambda n: Decimal(n).scaleb(-places))
    lines = []
    for _ in range(draw(st.integers(1, 40))):
        amount = draw(amounts)
        filters = draw(
            st.none()
            | st.dictionaries(
                names(), st.lists(names(), min_size=1, max_size=4), min_size=1, max_size=3
            )
        )
        lines.append(usage(draw(names()), format(amount, "f"), currency, filters=filters))
    invoice = invoice_of(lines, currency, tax=draw(st.sampled_from(["0", "0.2", "0.075"])))
    customer = account(
        name=draw(names()),
        locale=draw(st.sampled_from(LOCALES)),
        billing_address=draw(
            st.none() | st.lists(names().map(lambda t: t[:128]), min_size=1, max_size=3)
        ),
        tax_id=draw(st.none() | names().map(lambda t: t[:64].strip() or "X")),
    )
    return invoice, customer


def amount_read_back(text: str, locale: str) -> Decimal:
    """The total printed between "Total" and "Amount due" (a very long amount wraps onto a
    second line), as a Decimal."""
    between = readable(text).split(" Total ", 1)[1].split(" Amount due ", 1)[0]
    number = number_of(between)
    decimal_symbol = get_decimal_symbol(locale)
    digits = "".join(c for c in number if c.isdigit() or c == decimal_symbol)
    return Decimal(digits.replace(decimal_symbol, "."))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(invoices_and_accounts())
def test_any_invoice_renders_and_its_total_reads_back(case: tuple[Invoice, Account]) -> None:
    # GIVEN any invoice (lines, names in any supported script, currency, locale)
    invoice, customer = case
    # WHEN it is rendered
    pdf = render_invoice_pdf(invoice, customer)
    # THEN the PDF reads back, and the total on it is the JSON's total
    text = text_of(pdf)
    assert amount_read_back(text, customer.locale) == Decimal(invoice.to_json()["total"])


def test_text_validation_refuses_still_renders_rather_than_failing() -> None:
    # GIVEN an account stored before its text was checked: a line break, Thai, a private
    # character, a lone surrogate, and 250 distinct emoji (more than a Type 3 font holds)
    emoji = "".join(chr(0x1F300 + n) for n in range(250))
    stored = account().model_copy(
        update={"name": "Line\nbreak ไทย \ue000 \ud800 end", "billing_address": [emoji]}
    )
    # WHEN its invoice is rendered
    pdf = render_invoice_pdf(invoice_of([usage("Compute", "10")]), stored)
    # THEN there is a PDF, with what could be drawn on it
    assert "Line break" in readable(text_of(pdf))


@pytest.mark.parametrize(
    ("locale", "face"),
    [("ja", "NotoSansCJKJP"), ("zh_Hant", "NotoSansCJKTC"), ("ko", "NotoSansCJKKR")],
)
def test_han_characters_take_the_readers_regional_forms(locale: str, face: str) -> None:
    # 東 is one code point with regional glyph forms: each reader gets their own face
    pdf = render_invoice_pdf(invoice_of([usage("東京", "10")]), account(locale=locale))
    assert face.encode() in pdf
