"""Loading and validating catalog and accounts files (CONTRACT.md section 2).

A bad file is refused whole, with a CatalogError whose `source`, `entry` and `field` name
the file, the entry and the field, and whose str() is "source: entry: field: message".
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from zoneinfo import available_timezones

import pytest
import yaml

from billing.core.catalog import (
    Accounts,
    Catalog,
    CatalogError,
    load_accounts,
    load_catalog,
    parse_catalog,
)
from billing.core.pricing import GraduatedCharge, PackageCharge, PerUnitCharge, VolumeCharge

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# The contract's example catalog, plus a second plan so that accounts can differ.
CATALOG = """\
meters:
  - name: api_requests
    unit: request
    aggregation: sum
  - name: storage_gb_hours
    unit: GB-hour
    aggregation: sum
  - name: exports
    unit: export
    aggregation: count
plans:
  - id: pro
    name: Pro
    currency: USD
    fixed_fee: "49.00"
    minimum_commitment: "100.00"
    charges:
      - meter: api_requests
        model: graduated
        tiers:
          - {up_to: 1000000, unit_price: "0"}
          - {up_to: 10000000, unit_price: "0.000002", flat_fee: "5.00"}
          - {up_to: null, unit_price: "0.000001"}
      - meter: storage_gb_hours
        model: per_unit
        unit_price: "0.00012"
        filters: {region: [eu-west-1, eu-central-1]}
      - meter: exports
        model: package
        package_size: 1000
        package_price: "0.50"
  - id: basic
    name: Basic
    currency: EUR
    charges:
      - meter: api_requests
        model: volume
        tiers:
          - {up_to: 5000, unit_price: "0.001"}
          - {up_to: null, unit_price: "0.0005", flat_fee: "1.00"}
"""

ACCOUNTS = """\
accounts:
  - id: acct-1
    name: Acme Ltd
    email: billing@acme.example
    plan: pro
    timezone: Europe/Paris
    tax_rate: "0.20"
    start: "2026-10-10"
    end: null
  - id: acct-2
    name: Beta Corp
    email: ap@beta.example
    plan: basic
    timezone: America/New_York
"""


def variant(text: str, old: str, new: str) -> str:
    """`text` with the one occurrence of `old` replaced by `new`."""
    assert text.count(old) == 1, f"{old!r} must occur exactly once in the base document"
    return text.replace(old, new)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return load_catalog(write(tmp_path, "base-catalog.yaml", CATALOG))


def refused_catalog(tmp_path: Path, text: str, name: str = "catalog.yaml") -> CatalogError:
    path = write(tmp_path, name, text)
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert caught.value.source == str(path)
    return caught.value


def refused_accounts(
    tmp_path: Path, catalog: Catalog, text: str, name: str = "accounts.yaml"
) -> CatalogError:
    path = write(tmp_path, name, text)
    with pytest.raises(CatalogError) as caught:
        load_accounts(path, catalog)
    assert caught.value.source == str(path)
    return caught.value


def assert_located(error: CatalogError, entry: str, field: str, reason: str) -> None:
    assert (error.entry, error.field) == (entry, field), str(error)
    assert reason in error.reason, str(error)
    assert str(error) == f"{error.source}: {entry}: {field}: {error.reason}"


# --- the examples and the good files --------------------------------------------------------


def test_example_catalog_loads_with_exact_prices() -> None:
    catalog = load_catalog(EXAMPLES / "catalog.yaml")

    assert [meter.name for meter in catalog.meters] == [
        "api_requests",
        "storage_gb_hours",
        "seats",
        "exports",
    ]
    assert {meter.name: meter.aggregation for meter in catalog.meters} == {
        "api_requests": "sum",
        "storage_gb_hours": "sum",
        "seats": "max",
        "exports": "count",
    }
    assert [plan.id for plan in catalog.plans] == [
        "pro",
        "team",
        "starter-eur",
        "business-jpy",
        "gulf-kwd",
    ]

    pro = catalog.plans_by_id["pro"]
    assert pro.currency == "USD"
    assert pro.fixed_fee == Decimal("49.00")
    assert str(pro.fixed_fee) == "49.00"
    assert pro.minimum_commitment == Decimal("100.00")
    assert len(pro.charges) == 5
    graduated = pro.charges[0]
    assert isinstance(graduated, GraduatedCharge)
    assert [tier.up_to for tier in graduated.tiers] == [Decimal(1000000), Decimal(10000000), None]
    assert [tier.unit_price for tier in graduated.tiers] == [
        Decimal("0"),
        Decimal("0.000002"),
        Decimal("0.000001"),
    ]
    assert graduated.tiers[1].flat_fee == Decimal("5.00")
    assert all(
        isinstance(tier.unit_price, Decimal) and isinstance(tier.flat_fee, Decimal)
        for tier in graduated.tiers
    )
    storage_eu = pro.charges[1]
    assert isinstance(storage_eu, PerUnitCharge)
    assert storage_eu.unit_price == Decimal("0.00012")
    assert storage_eu.filters == {"region": ["eu-west-1", "eu-central-1"]}
    assert isinstance(pro.charges[3], VolumeCharge)
    exports = pro.charges[4]
    assert isinstance(exports, PackageCharge)
    assert (exports.package_size, exports.package_price) == (Decimal(1000), Decimal("0.50"))

    assert catalog.plans_by_id["business-jpy"].currency == "JPY"
    assert catalog.plans_by_id["business-jpy"].fixed_fee == Decimal("5000")
    assert catalog.plans_by_id["gulf-kwd"].fixed_fee is None


def test_example_accounts_load(example_catalog: Catalog) -> None:
    accounts = load_accounts(EXAMPLES / "accounts.yaml", example_catalog)

    assert len(accounts.accounts) == 6
    assert [account.id for account in accounts.accounts] == [f"acct-{n}" for n in range(1, 7)]
    acme = accounts.by_id["acct-1"]
    assert (acme.plan, acme.timezone, acme.email) == ("pro", "Europe/Paris", "billing@acme.example")
    assert acme.tax_rate == Decimal("0.20")
    assert isinstance(acme.tax_rate, Decimal)
    assert (acme.start, acme.end) == (date(2026, 10, 10), None)
    assert accounts.by_id["acct-2"].tax_rate == Decimal(0)  # the default
    assert accounts.by_id["acct-3"].tax_rate == Decimal("0.19")
    assert accounts.by_id["acct-4"].name == "東京データ株式会社"
    assert accounts.by_id["acct-6"].end == date(2026, 11, 21)
    assert accounts.by_id["acct-6"].start is None


def test_fixtures_are_the_examples(example_catalog: Catalog, example_accounts: Accounts) -> None:
    # Held to the YAML documents as read by yaml alone (loading the files again the way the
    # fixtures do would compare the loader with itself).
    catalog = yaml.safe_load((EXAMPLES / "catalog.yaml").read_text("utf-8"))
    accounts = yaml.safe_load((EXAMPLES / "accounts.yaml").read_text("utf-8"))
    assert [(m.name, m.aggregation) for m in example_catalog.meters] == [
        (m["name"], m["aggregation"]) for m in catalog["meters"]
    ]
    assert [(p.id, p.currency, [c.meter for c in p.charges]) for p in example_catalog.plans] == [
        (p["id"], p["currency"], [c["meter"] for c in p["charges"]]) for p in catalog["plans"]
    ]
    assert [(a.id, a.plan, a.timezone) for a in example_accounts.accounts] == [
        (a["id"], a["plan"], a["timezone"]) for a in accounts["accounts"]
    ]


def test_contract_example_loads(catalog: Catalog, tmp_path: Path) -> None:
    assert len(catalog.meters) == 3
    assert len(catalog.plans) == 2
    accounts = load_accounts(write(tmp_path, "accounts.yaml", ACCOUNTS), catalog)
    assert [account.plan for account in accounts.accounts] == ["pro", "basic"]


def as_json(tmp_path: Path, yaml_path: Path) -> Path:
    document = yaml.safe_load(yaml_path.read_text("utf-8"))
    return write(tmp_path, yaml_path.with_suffix(".json").name, json.dumps(document))


def test_json_form_loads_identically(tmp_path: Path) -> None:
    yaml_catalog = load_catalog(EXAMPLES / "catalog.yaml")
    json_catalog = load_catalog(as_json(tmp_path, EXAMPLES / "catalog.yaml"))
    assert json_catalog == yaml_catalog
    assert json_catalog.model_dump() == yaml_catalog.model_dump()

    yaml_accounts = load_accounts(EXAMPLES / "accounts.yaml", yaml_catalog)
    json_accounts = load_accounts(as_json(tmp_path, EXAMPLES / "accounts.yaml"), json_catalog)
    assert json_accounts == yaml_accounts
    assert json_accounts.model_dump() == yaml_accounts.model_dump()


def test_json_contract_example_loads_like_yaml(catalog: Catalog, tmp_path: Path) -> None:
    json_catalog = load_catalog(write(tmp_path, "c.json", json.dumps(yaml.safe_load(CATALOG))))
    assert json_catalog == catalog


def test_int_prices_are_exact_and_accepted(tmp_path: Path) -> None:
    text = variant(CATALOG, 'fixed_fee: "49.00"', "fixed_fee: 49")
    assert load_catalog(write(tmp_path, "c.yaml", text)).plans[0].fixed_fee == Decimal(49)


# --- bad catalogs ---------------------------------------------------------------------------

PRO = "plans[0] (pro)"
BASIC = "plans[1] (basic)"

BAD_CATALOGS = [
    pytest.param(
        'unit_price: "0.00012"',
        "unit_price: 0.5",
        PRO,
        "charges[1].unit_price",
        "not a bare number",
        id="float-unit-price",
    ),
    pytest.param(
        'unit_price: "0.000002"',
        "unit_price: 0.000002",
        PRO,
        "charges[0].tiers[1].unit_price",
        "not a bare number",
        id="float-tier-price",
    ),
    pytest.param(
        'flat_fee: "5.00"',
        "flat_fee: 5.00",
        PRO,
        "charges[0].tiers[1].flat_fee",
        "not a bare number",
        id="float-flat-fee",
    ),
    pytest.param(
        'fixed_fee: "49.00"',
        "fixed_fee: 49.00",
        PRO,
        "fixed_fee",
        "not a bare number",
        id="float-fixed-fee",
    ),
    pytest.param(
        'package_price: "0.50"',
        "package_price: 0.50",
        PRO,
        "charges[2].package_price",
        "not a bare number",
        id="float-package-price",
    ),
    pytest.param(
        "package_size: 1000",
        "package_size: 1000.0",
        PRO,
        "charges[2].package_size",
        "not a bare number",
        id="float-package-size",
    ),
    pytest.param(
        'unit_price: "0.00012"',
        'unit_price: "-0.00012"',
        PRO,
        "charges[1].unit_price",
        "must not be negative",
        id="negative-price",
    ),
    pytest.param(
        'minimum_commitment: "100.00"',
        'minimum_commitment: "-1"',
        PRO,
        "minimum_commitment",
        "must not be negative",
        id="negative-minimum",
    ),
    pytest.param(
        'unit_price: "0.00012"',
        'unit_price: "twelve"',
        PRO,
        "charges[1].unit_price",
        "is not a decimal number",
        id="price-not-a-number",
    ),
    pytest.param(
        'unit_price: "0.00012"',
        'unit_price: "NaN"',
        PRO,
        "charges[1].unit_price",
        "is not a decimal number",
        id="price-nan",
    ),
    pytest.param(
        "package_size: 1000",
        "package_size: 0",
        PRO,
        "charges[2].package_size",
        "must be greater than 0",
        id="zero-package-size",
    ),
    pytest.param(
        "model: per_unit",
        "model: flat",
        PRO,
        "charges[1].model",
        "'flat' is not a charge model",
        id="unknown-charge-model",
    ),
    pytest.param(
        "- meter: exports",
        "- meter: downloads",
        PRO,
        "charges[2].meter",
        "unknown meter 'downloads'",
        id="unknown-meter",
    ),
    pytest.param(
        "name: exports",
        "name: api_requests",
        "meters[2] (api_requests)",
        "name",
        "'api_requests' appears twice",
        id="duplicate-meter",
    ),
    pytest.param(
        "id: basic",
        "id: pro",
        "plans[1] (pro)",
        "id",
        "'pro' appears twice",
        id="duplicate-plan",
    ),
    pytest.param(
        "- meter: exports\n        model: package",
        "- meter: api_requests\n        model: package",
        PRO,
        "charges[2]",
        "only once",
        id="meter-priced-twice",
    ),
    pytest.param(
        "{up_to: 10000000,",
        "{up_to: 500000,",
        PRO,
        "charges[0].tiers",
        "up_to must rise",
        id="tiers-falling",
    ),
    pytest.param(
        "{up_to: 10000000,",
        "{up_to: 1000000,",
        PRO,
        "charges[0].tiers",
        "up_to must rise",
        id="tiers-equal",
    ),
    pytest.param(
        '{up_to: null, unit_price: "0.000001"}',
        '{up_to: 20000000, unit_price: "0.000001"}',
        PRO,
        "charges[0].tiers",
        "the last tier must have up_to: null",
        id="last-tier-bounded",
    ),
    pytest.param(
        '{up_to: 1000000, unit_price: "0"}',
        '{up_to: null, unit_price: "0"}',
        PRO,
        "charges[0].tiers",
        "only the last tier may have up_to: null",
        id="non-last-tier-unbounded",
    ),
    pytest.param(
        '{up_to: 5000, unit_price: "0.001"}',
        '{up_to: 0, unit_price: "0.001"}',
        BASIC,
        "charges[0].tiers[0].up_to",
        "must be greater than 0",
        id="zero-up-to",
    ),
    pytest.param(
        "currency: USD",
        "currency: USX",
        PRO,
        "currency",
        "'USX' is not an ISO 4217 currency code",
        id="unknown-currency",
    ),
    pytest.param(
        "currency: EUR",
        "currency: eur",
        BASIC,
        "currency",
        "'eur' is not an ISO 4217 currency code",
        id="lowercase-currency",
    ),
    pytest.param(
        'flat_fee: "1.00"',
        'flat_fe: "1.00"',
        BASIC,
        "charges[0].tiers[1].flat_fe",
        "is not a known field",
        id="unknown-field",
    ),
    pytest.param(
        "    unit: GB-hour\n",
        "",
        "meters[1] (storage_gb_hours)",
        "unit",
        "is required",
        id="missing-meter-unit",
    ),
    pytest.param(
        "        package_size: 1000\n",
        "",
        PRO,
        "charges[2].package_size",
        "is required",
        id="missing-package-size",
    ),
    pytest.param(
        "    name: Basic\n",
        "",
        BASIC,
        "name",
        "is required",
        id="missing-plan-name",
    ),
    pytest.param(
        "aggregation: count",
        "aggregation: avg",
        "meters[2] (exports)",
        "aggregation",
        "'sum', 'count', 'max', 'unique_count' or 'latest'",
        id="unknown-aggregation",
    ),
    pytest.param(
        "aggregation: count",
        "aggregation: unique_count",
        "meters[2] (exports)",
        "field",
        "is required for aggregation unique_count",
        id="unique-count-without-field",
    ),
    pytest.param(
        "aggregation: count",
        "aggregation: count\n    field: user_id",
        "meters[2] (exports)",
        "field",
        "is not a known field for aggregation count (only unique_count takes one)",
        id="field-on-count",
    ),
    pytest.param(
        "aggregation: count",
        "aggregation: latest\n    field: user_id",
        "meters[2] (exports)",
        "field",
        "is not a known field for aggregation latest",
        id="field-on-latest",
    ),
    pytest.param(
        "aggregation: count",
        'aggregation: unique_count\n    field: ""',
        "meters[2] (exports)",
        "field",
        "at least 1 character",
        id="unique-count-empty-field",
    ),
]


@pytest.mark.parametrize(("old", "new", "entry", "field", "reason"), BAD_CATALOGS)
def test_bad_catalog_is_refused_naming_file_entry_and_field(
    tmp_path: Path, old: str, new: str, entry: str, field: str, reason: str
) -> None:
    error = refused_catalog(tmp_path, variant(CATALOG, old, new))
    assert_located(error, entry, field, reason)
    # pydantic puts a discriminated union's tag in its locations; the reader never wrote it.
    parts = re.split(r"[.\[\]]+", error.field)
    assert not {"per_unit", "graduated", "volume", "package"} & set(parts), error.field


def test_float_price_message_suggests_the_decimal_string(tmp_path: Path) -> None:
    error = refused_catalog(tmp_path, variant(CATALOG, 'unit_price: "0.00012"', "unit_price: 0.5"))
    assert str(error) == (
        f"{tmp_path / 'catalog.yaml'}: plans[0] (pro): charges[1].unit_price: "
        'must be a decimal string like "0.5", not a bare number'
    )


def test_unknown_charge_model_lists_the_known_ones(tmp_path: Path) -> None:
    error = refused_catalog(tmp_path, variant(CATALOG, "model: per_unit", "model: flat"))
    for model in ("per_unit", "graduated", "volume", "package"):
        assert model in error.reason


def test_misspelt_required_field_is_named_as_written(tmp_path: Path) -> None:
    # "unit_prise" is both an unknown field and a missing unit_price: the message should
    # name what the file actually says, or the reader hunts for a field that is not there.
    error = refused_catalog(
        tmp_path, variant(CATALOG, 'unit_price: "0.00012"', 'unit_prise: "0.00012"')
    )
    assert (error.entry, error.field.split(".")[0]) == (PRO, "charges[1]")
    assert "unit_prise" in str(error), str(error)


def test_float_price_in_json_is_refused(tmp_path: Path) -> None:
    document = yaml.safe_load(CATALOG)
    document["plans"][0]["charges"][1]["unit_price"] = 0.5
    error = refused_catalog(tmp_path, json.dumps(document), "catalog.json")
    assert_located(error, PRO, "charges[1].unit_price", "not a bare number")


def test_bad_catalog_document_parsed_in_memory_names_the_source() -> None:
    document = yaml.safe_load(variant(CATALOG, "currency: USD", "currency: USX"))
    with pytest.raises(CatalogError) as caught:
        parse_catalog(document, "dynamodb:catalog")
    assert str(caught.value).startswith("dynamodb:catalog: plans[0] (pro): currency: ")


# --- bad accounts ---------------------------------------------------------------------------

ACME = "accounts[0] (acct-1)"
BETA = "accounts[1] (acct-2)"

BAD_ACCOUNTS = [
    pytest.param("plan: basic", "plan: gold", BETA, "plan", "unknown plan 'gold'", id="plan"),
    pytest.param(
        "timezone: America/New_York",
        "timezone: Mars/Olympus",
        BETA,
        "timezone",
        "'Mars/Olympus' is not an IANA time zone name",
        id="timezone-unknown",
    ),
    pytest.param(
        "timezone: Europe/Paris",
        'timezone: "Europe/Paris "',
        ACME,
        "timezone",
        "is not an IANA time zone name",
        id="timezone-trailing-space",
    ),
    pytest.param(
        "timezone: Europe/Paris",
        "timezone: europe/paris",
        ACME,
        "timezone",
        "is not an IANA time zone name",
        id="timezone-wrong-case",
    ),
    pytest.param(
        "timezone: Europe/Paris",
        "timezone: PST",
        ACME,
        "timezone",
        "'PST' is not an IANA time zone name",
        id="timezone-abbreviation",
    ),
    pytest.param(
        "timezone: Europe/Paris",
        "timezone: ../../etc/passwd",
        ACME,
        "timezone",
        "is not an IANA time zone name",
        id="timezone-path",
    ),
    pytest.param(
        'tax_rate: "0.20"',
        'tax_rate: "1.5"',
        ACME,
        "tax_rate",
        "at most 1",
        id="tax-rate-over-1",
    ),
    pytest.param(
        'tax_rate: "0.20"',
        "tax_rate: 20",
        ACME,
        "tax_rate",
        "at most 1",
        id="tax-rate-percent",
    ),
    pytest.param(
        'tax_rate: "0.20"',
        'tax_rate: "-0.1"',
        ACME,
        "tax_rate",
        "must not be negative",
        id="tax-rate-negative",
    ),
    pytest.param(
        'tax_rate: "0.20"',
        "tax_rate: 0.20",
        ACME,
        "tax_rate",
        "not a bare number",
        id="tax-rate-float",
    ),
    pytest.param(
        "end: null",
        'end: "2026-10-01"',
        ACME,
        "end",
        "must be after start",
        id="end-before-start",
    ),
    pytest.param(
        "end: null",
        'end: "2026-10-10"',
        ACME,
        "end",
        "must be after start",
        id="end-equals-start",
    ),
    pytest.param(
        "id: acct-2", "id: acct-1", "accounts[1] (acct-1)", "id", "appears twice", id="dup"
    ),
    pytest.param(
        "    email: ap@beta.example\n", "", BETA, "email", "is required", id="missing-email"
    ),
    pytest.param(
        "email: ap@beta.example",
        "emial: ap@beta.example",
        BETA,
        "emial",
        "is not a known field (did you mean 'email'?)",
        id="misspelt-email",
    ),
    pytest.param(
        'start: "2026-10-10"',
        'start: "2026-13-01"',
        ACME,
        "start",
        "'2026-13-01' is not a real date",
        id="start-month-13",
    ),
    pytest.param(
        'start: "2026-10-10"',
        'start: "2026-02-30"',
        ACME,
        "start",
        "is not a real date",
        id="start-feb-30",
    ),
    pytest.param(
        'start: "2026-10-10"',
        'start: "10/10/2026"',
        ACME,
        "start",
        'like "2026-10-10"',
        id="start-not-iso",
    ),
]


@pytest.mark.parametrize(("old", "new", "entry", "field", "reason"), BAD_ACCOUNTS)
def test_bad_accounts_are_refused_naming_file_entry_and_field(
    tmp_path: Path, catalog: Catalog, old: str, new: str, entry: str, field: str, reason: str
) -> None:
    error = refused_accounts(tmp_path, catalog, variant(ACCOUNTS, old, new))
    assert_located(error, entry, field, reason)


@pytest.mark.parametrize("email", ["ap.beta.example", "ap@beta", "a p@beta.example"])
def test_bad_email_is_refused_with_a_readable_reason(
    tmp_path: Path, catalog: Catalog, email: str
) -> None:
    error = refused_accounts(
        tmp_path, catalog, variant(ACCOUNTS, "email: ap@beta.example", f'email: "{email}"')
    )
    assert (error.entry, error.field) == (BETA, "email")
    # The reason is for a person editing a file, not a regular expression to decode.
    assert "pattern" not in error.reason, str(error)
    assert "email" in error.reason.lower() or "address" in error.reason.lower(), str(error)


@pytest.mark.parametrize("name", ["EST", "CET", "MST", "HST", "EST5EDT", "UTC", "GMT"])
def test_legacy_zone_names_follow_the_iana_database(
    tmp_path: Path, catalog: Catalog, name: str
) -> None:
    # "EST"-style names are accepted exactly when the IANA database the system ships lists
    # them (it keeps a few legacy ones as links); the catalog invents no rule of its own.
    text = variant(ACCOUNTS, "timezone: America/New_York", f"timezone: {name}")
    path = write(tmp_path, "accounts.yaml", text)
    if name in available_timezones():
        assert load_accounts(path, catalog).by_id["acct-2"].timezone == name
    else:
        with pytest.raises(CatalogError) as caught:
            load_accounts(path, catalog)
        assert (caught.value.entry, caught.value.field) == (BETA, "timezone")


def test_pst_is_not_in_the_iana_database() -> None:
    # The case above refuses it through the database, not through a hard-coded list.
    assert "PST" not in available_timezones()
    assert "Europe/Paris " not in available_timezones()


def test_accounts_need_the_catalog_for_plans(tmp_path: Path) -> None:
    other = load_catalog(EXAMPLES / "catalog.yaml")  # has "pro" but no "basic"
    error = refused_accounts(tmp_path, other, ACCOUNTS)
    assert_located(error, BETA, "plan", "unknown plan 'basic'")


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    ["2026-10-10", '"2026-10-10"', "'2026-10-10'"],
    ids=["yaml-date", "double-quoted", "single-quoted"],
)
def test_start_and_end_accept_yaml_dates_and_iso_strings(
    tmp_path: Path, catalog: Catalog, written: str
) -> None:
    text = variant(ACCOUNTS, 'start: "2026-10-10"', "start: 2026-09-01")
    text = variant(text, "end: null", f"end: {written}")
    text = variant(text, "plan: basic", f"plan: basic\n    start: {written}")
    accounts = load_accounts(write(tmp_path, "accounts.yaml", text), catalog)
    assert accounts.by_id["acct-1"].start == date(2026, 9, 1)
    assert accounts.by_id["acct-1"].end == date(2026, 10, 10)
    assert accounts.by_id["acct-2"].start == date(2026, 10, 10)
    assert accounts.by_id["acct-2"].end is None
    for account in accounts.accounts:
        assert type(account.start) is date


def test_end_accepts_a_quoted_date(tmp_path: Path, catalog: Catalog) -> None:
    text = variant(ACCOUNTS, "end: null", 'end: "2026-12-01"')
    account = load_accounts(write(tmp_path, "accounts.yaml", text), catalog).by_id["acct-1"]
    assert (account.start, account.end) == (date(2026, 10, 10), date(2026, 12, 1))
    assert type(account.end) is date


def test_json_dates_are_strings(tmp_path: Path, catalog: Catalog) -> None:
    document = yaml.safe_load(ACCOUNTS)
    document["accounts"][0]["end"] = "2027-01-01"
    accounts = load_accounts(write(tmp_path, "accounts.json", json.dumps(document)), catalog)
    assert accounts.by_id["acct-1"].end == date(2027, 1, 1)


def test_unquoted_impossible_date_is_located(tmp_path: Path, catalog: Catalog) -> None:
    # YAML itself chokes on an unquoted 2026-13-01; the file must still be refused with a
    # message that names the entry and the field, as the quoted form is.
    text = variant(ACCOUNTS, 'start: "2026-10-10"', "start: 2026-13-01")
    error = refused_accounts(tmp_path, catalog, text)
    assert (error.entry, error.field) == (ACME, "start"), str(error)


# --- unreadable files -----------------------------------------------------------------------


def test_invalid_yaml_is_refused_with_its_position(tmp_path: Path) -> None:
    error = refused_catalog(tmp_path, "meters: [\n  - name: x\n")
    assert (error.entry, error.field) == ("", "")
    assert error.reason.startswith("is not valid YAML")
    assert "line 2" in error.reason
    assert str(error).startswith(f"{tmp_path / 'catalog.yaml'}: is not valid YAML")


def test_invalid_yaml_accounts_are_refused(tmp_path: Path, catalog: Catalog) -> None:
    error = refused_accounts(tmp_path, catalog, "accounts:\n  - id: a\n   name: x\n")
    assert error.reason.startswith("is not valid YAML")


def test_invalid_json_is_refused_with_its_position(tmp_path: Path) -> None:
    error = refused_catalog(tmp_path, '{"meters": [}', "catalog.json")
    assert (error.entry, error.field) == ("", "")
    assert error.reason.startswith("is not valid JSON")
    assert "line 1 column 13" in error.reason


def test_json_file_is_not_read_as_yaml(tmp_path: Path) -> None:
    # Valid YAML but not valid JSON: a .json file is held to JSON.
    error = refused_catalog(tmp_path, "meters: []\nplans: []\n", "catalog.json")
    assert error.reason.startswith("is not valid JSON")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert caught.value.source == str(path)
    assert caught.value.reason.startswith("cannot be read")
    assert str(caught.value).startswith(f"{path}: cannot be read")


def test_missing_accounts_file_is_refused(catalog: Catalog, tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot be read"):
        load_accounts(tmp_path / "nowhere.json", catalog)


@pytest.mark.parametrize("text", ["", "- 1\n- 2\n", "just text\n"])
def test_document_of_the_wrong_shape_is_refused(tmp_path: Path, text: str) -> None:
    error = refused_catalog(tmp_path, text)
    assert str(error).startswith(str(tmp_path / "catalog.yaml"))


def test_a_bad_entry_refuses_the_whole_file(tmp_path: Path, catalog: Catalog) -> None:
    # One good account and one bad one: nothing is returned, not even the good one.
    text = variant(ACCOUNTS, "plan: basic", "plan: gold")
    path = write(tmp_path, "accounts.yaml", text)
    with pytest.raises(CatalogError):
        load_accounts(path, catalog)


# --- names that could not be mailed or printed (issue 11, finding 8) -----------------------


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ('"Beta\\nCorp"', "one line without control characters (has '\\n' (U+000A))"),
        ('"Beta\\r\\nCorp"', "(U+000D), '\\n' (U+000A))"),
        ('"Beta\\u2028Corp"', "(U+2028)"),
        ('"Beta\\tCorp"', "(U+0009)"),
        ('"Beta\\x7fCorp"', "(U+007F)"),
        ('"Beta\\x85Corp"', "(U+0085)"),
        ('"Beta\\x1bCorp"', "(U+001B)"),
    ],
)
def test_customer_name_with_a_line_break_or_control_character_is_refused(
    tmp_path: Path, catalog: Catalog, written: str, reason: str
) -> None:
    # GIVEN an account whose name could never go in an email header or on one PDF line
    text = variant(ACCOUNTS, "name: Beta Corp", f"name: {written}")

    # WHEN the file is loaded THEN it is refused, naming the file, the entry and the field
    error = refused_accounts(tmp_path, catalog, text)
    assert_located(error, BETA, "name", reason)


def test_plan_name_with_a_line_break_is_refused(tmp_path: Path) -> None:
    error = refused_catalog(tmp_path, variant(CATALOG, "name: Basic", 'name: "Ba\\nsic"'))
    assert_located(error, "plans[1] (basic)", "name", "one line without control characters")


def test_names_in_any_script_are_still_accepted(tmp_path: Path, catalog: Catalog) -> None:
    text = variant(ACCOUNTS, "name: Beta Corp", 'name: "شركة الخليج 👍 Ünïcödé  東京"')
    accounts = load_accounts(write(tmp_path, "accounts.yaml", text), catalog)
    assert accounts.by_id["acct-2"].name == "شركة الخليج 👍 Ünïcödé  東京"
