"""What an invoice prints is checked when it is loaded: the accounts' locale, billing
address and tax ID, the catalog's names, units, descriptions and filters, and the seller
setting. Text the bundled fonts cannot draw, or that is not one line, is refused up front
with the file, the entry and the field (issue 11, findings 1 and 3); the fonts themselves
are the vendored files, and coverage.json is what they draw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billing import fonts
from billing.core.catalog import Catalog, CatalogError, load_accounts, load_catalog
from billing.core.fields import printable
from billing.core.seller import SellerSettings, SellerSettingsError
from tests.unit.test_catalog import ACCOUNTS, CATALOG, variant, write

ACME = "accounts[0] (acct-1)"
PRO = "plans[0] (pro)"


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return load_catalog(write(tmp_path, "base-catalog.yaml", CATALOG))


def refused(load: object, path: Path, *args: object) -> CatalogError:
    with pytest.raises(CatalogError) as caught:
        load(path, *args)  # type: ignore[operator]
    assert caught.value.source == str(path)
    return caught.value


# --- accounts: locale, billing address, tax ID ----------------------------------------------


def test_new_account_fields_load_and_default(tmp_path: Path, catalog: Catalog) -> None:
    # GIVEN an account with a locale, an address and a tax ID, and one with none of them
    text = variant(
        ACCOUNTS,
        "    end: null\n",
        "    end: null\n    locale: fr-FR\n"
        '    billing_address: ["12 Rue de la Paix", "75002 Paris", "France"]\n'
        "    tax_id: FR40303265045\n",
    )
    # WHEN the file is loaded
    accounts = load_accounts(write(tmp_path, "accounts.yaml", text), catalog)
    acme, beta = accounts.accounts
    # THEN the locale is spelt as Babel spells it, and the other account has the defaults
    assert acme.locale == "fr_FR"
    assert acme.billing_address == ["12 Rue de la Paix", "75002 Paris", "France"]
    assert acme.tax_id == "FR40303265045"
    assert (beta.locale, beta.billing_address, beta.tax_id) == ("en", None, None)


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        ("locale: xx", "locale", "'xx' is not a known locale"),
        ("locale: 12", "locale", "valid string"),
        ('tax_id: "FR 403\\n03"', "tax_id", "must be one line without control characters"),
        ('tax_id: ""', "tax_id", "at least 1 character"),
        ("billing_address: []", "billing_address", "at least 1 item"),
        ('billing_address: "1 Main St"', "billing_address", "valid list"),
        ('billing_address: ["1 Main St", "Bad\\tline"]', "billing_address[1]", "(U+0009)"),
        ('billing_address: ["ถนนสุขุมวิท"]', "billing_address[0]", "cannot show: 'ถ' (U+0E16)"),
        ('name: "Acme\\nLtd"', "name", "must be one line"),
        ('name: "บริษัท"', "name", "invoice fonts cannot show"),
        ('name: "   "', "name", "must not be blank"),
        ('email: "ap@ไทย.example"', "email", "can be mailed as written"),
    ],
)
def test_account_text_an_invoice_cannot_print_is_refused_where_it_is(
    tmp_path: Path, catalog: Catalog, line: str, field: str, reason: str
) -> None:
    key = line.split(":", 1)[0]
    base = ACCOUNTS
    if key in {"name", "email"}:
        old = {"name": "name: Acme Ltd", "email": "email: billing@acme.example"}[key]
        text = variant(base, old, line)
    else:
        text = variant(base, "    end: null\n", f"    end: null\n    {line}\n")
    error = refused(load_accounts, write(tmp_path, "accounts.yaml", text), catalog)
    assert (error.entry, error.field) == (ACME, field), str(error)
    assert reason in error.reason, str(error)


# --- catalog: names, units, descriptions, filters -------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "entry", "field"),
    [
        (
            "filters: {region: [eu-west-1, eu-central-1]}",
            'filters: {region: [eu-west-1, "eu\\ncentral"]}',
            PRO,
            "charges[1].filters.region[1]",
        ),
        (
            "filters: {region: [eu-west-1, eu-central-1]}",
            "filters: {region: [eu-west-1, กรุงเทพ]}",
            PRO,
            "charges[1].filters.region[1]",
        ),
        ("name: Pro\n", 'name: "Pro\\tPlan"\n', PRO, "name"),
        ("unit: request", 'unit: "req\\u0000"', "meters[0] (api_requests)", "unit"),
    ],
)
def test_catalog_text_an_invoice_cannot_print_is_refused_where_it_is(
    tmp_path: Path, old: str, new: str, entry: str, field: str
) -> None:
    error = refused(load_catalog, write(tmp_path, "catalog.yaml", variant(CATALOG, old, new)))
    assert (error.entry, error.field) == (entry, field), str(error)


def test_catalog_filters_in_any_supported_script_load(tmp_path: Path) -> None:
    text = variant(
        CATALOG,
        "filters: {region: [eu-west-1, eu-central-1]}",
        "filters: {region: [東京, القاهرة, תל אביב, मुंबई, 서울, 🌍]}",
    )
    catalog = load_catalog(write(tmp_path, "catalog.yaml", text))
    filters = catalog.plans[0].charges[1].filters
    assert filters == {"region": ["東京", "القاهرة", "תל אביב", "मुंबई", "서울", "🌍"]}


# --- what the fonts draw --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Société Générale",
        "Müller & Söhne GmbH",
        "東京データ株式会社",
        "삼성전자",
        "شركة الاتصالات",
        "חברת החשמל",
        "टाटा कंसल्टेंसी",
        "Ελληνικά Πετρέλαια",
        "Газпром",
        "Công ty Việt Nam",
        "Party 🎉 ❤️ 👍🏽",
        "Zero\u200dwidth joiner",
    ],
)
def test_text_in_the_supported_scripts_is_printable(text: str) -> None:
    assert printable(text) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("line\nbreak", "(U+000A)"),
        ("tab\there", "(U+0009)"),
        ("para\u2029graph", "(U+2029)"),
        ("Thai ไทย", "(U+0E44)"),
        ("private \ue000", "(U+E000)"),
        ("\U000e0001tag", "(U+E0001)"),
    ],
)
def test_text_no_font_draws_is_not_printable(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=r".*") as caught:
        printable(text)
    assert reason in str(caught.value)


def test_printable_ascii_is_drawn_by_noto_sans() -> None:
    latin = fonts.coverage()[fonts.LATIN.name]
    assert all(code in latin for code in range(0x20, 0x7F))


def test_fonts_are_the_vendored_files() -> None:
    fonts.verify()  # raises FontChecksumError on any difference


def test_a_changed_font_file_is_refused(tmp_path: Path) -> None:
    for name in fonts._expected():
        (tmp_path / name).write_bytes(b"not a font")
    with pytest.raises(fonts.FontChecksumError, match="SHA-256"):
        fonts.verify(tmp_path)


def test_coverage_json_is_what_the_fonts_draw() -> None:
    # To refresh it after changing a font:
    #   python -c "import json; from billing.fonts import *; COVERAGE.write_text(
    #     json.dumps(measure_coverage(), separators=(',', ':')) + '\n', encoding='ascii')"
    stored = json.loads(fonts.COVERAGE.read_text(encoding="ascii"))
    measured = {
        name: [list(pair) for pair in ranges] for name, ranges in fonts.measure_coverage().items()
    }
    assert stored == measured


def test_text_shaping_is_available() -> None:
    import uharfbuzz  # fpdf2 imports it only when shaping is turned on

    assert uharfbuzz.__version__


# --- the seller setting ---------------------------------------------------------------------


def test_seller_setting_defaults_and_reads_every_field() -> None:
    assert SellerSettings.parse(None).issuer("ar@x.example").name == "Usage Billing"
    issuer = SellerSettings.parse(
        json.dumps(
            {
                "legal_name": "Example Cloud Ltd",
                "address": ["1 Main Street", "London EC1A 1AA"],
                "tax_id": "GB123456789",
                "payment_instructions": ["IBAN GB33 BUKB 2020 1555 5555 55"],
                "payment_terms_days": 14,
                "credit_settlement": "next_invoice",
            }
        )
    ).issuer("ar@x.example")
    assert issuer.name == "Example Cloud Ltd"
    assert issuer.address == ("1 Main Street", "London EC1A 1AA")
    assert issuer.tax_id == "GB123456789"
    assert issuer.payment_instructions == ("IBAN GB33 BUKB 2020 1555 5555 55",)
    assert (issuer.payment_terms_days, issuer.email) == (14, "ar@x.example")
    assert issuer.credit_settlement == "next_invoice"
    assert SellerSettings.parse(None).issuer("ar@x.example").credit_settlement == "refund"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("{not json", "seller: is not valid JSON"),
        ('{"legal_name": "A\\nB"}', "seller: legal_name: must be one line"),
        ('{"address": ["ok", "ไทย"]}', "seller: address.1: has characters"),
        ('{"payment_terms_days": -1}', "seller: payment_terms_days:"),
        ('{"payment_terms": 30}', "seller: payment_terms: is not a known field"),
        ('{"credit_settlement": "cash"}', "seller: credit_settlement:"),
    ],
)
def test_bad_seller_setting_is_refused_naming_the_field(setting: str, message: str) -> None:
    with pytest.raises(SellerSettingsError) as caught:
        SellerSettings.parse(setting)
    assert str(caught.value).startswith(message), str(caught.value)
