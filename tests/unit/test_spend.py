"""Spend thresholds: parsing the setting, the crossing rule at its exact boundaries, ledger
images from the stream, and publishing each alert at most once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from billing.core.catalog import Account, Catalog, parse_catalog
from billing.core.spend import Crossing, SpendThresholds, ThresholdsError, crossings
from billing.core.usage import Aggregate, MeterUsage
from billing.customer.spend_alerts import SpendAlerts
from billing.rating.ledger import AccountLedger
from billing.store.errors import StoreError
from billing.store.ledger_store import ledger_item, usage_image

D = Decimal
USD = SpendThresholds.parse('{"USD": ["100", "10.5", "1000"], "JPY": ["5000"]}')


def charges(**periods: dict[str, str]) -> dict[str, dict[str, Decimal]]:
    """Running charges by period, the period named like p2026_11."""
    return {
        name.removeprefix("p").replace("_", "-"): {key: D(value) for key, value in lines.items()}
        for name, lines in periods.items()
    }


def test_setting_is_sorted_and_exact_in_the_minor_unit() -> None:
    assert USD.by_currency == {"USD": (D("10.50"), D("100.00"), D("1000.00")), "JPY": (D(5000),)}
    assert [str(amount) for amount in USD.for_currency("USD")] == ["10.50", "100.00", "1000.00"]
    assert USD.for_currency("EUR") == ()
    assert SpendThresholds.parse(None).by_currency == {}
    assert SpendThresholds.parse("  ").by_currency == {}


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("{", "spend thresholds are not JSON"),
        ('{"USD": [100.5]}', 'must be a decimal string like "100.5", not a bare number'),
        ('{"USD": ["0"]}', "must be greater than 0"),
        ('{"USD": ["-5"]}', "must be greater than 0"),
        ('{"USD": ["ten"]}', "'ten' is not a decimal number"),
        ('{"XYZ": ["10"]}', "'XYZ' is not an ISO 4217 currency code"),
        ('{"USD": ["10.001"]}', "USD: 10.001 has more decimals than USD has"),
        ('{"JPY": ["10.5"]}', "JPY: 10.5 has more decimals than JPY has"),
        ('["USD"]', "spend thresholds: : "),
    ],
)
def test_a_bad_setting_is_refused_with_its_reason(setting: str, message: str) -> None:
    with pytest.raises(ThresholdsError, match="spend thresholds") as error:
        SpendThresholds.parse(setting)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("before", "after", "crossed"),
    [
        ("99.99", "100.00", ["100.00"]),  # reaching the threshold exactly counts
        ("100.00", "100.01", []),  # already reached before this write
        ("99.99", "99.99", []),
        ("0", "10.49", []),
        ("0", "10.50", ["10.50"]),
        ("5.00", "1000.00", ["10.50", "100.00", "1000.00"]),  # one write, three alerts
        ("150.00", "90.00", []),  # going down never alerts
    ],
)
def test_crossed_when_charges_go_from_below_to_at_or_above(
    before: str, after: str, crossed: list[str]
) -> None:
    # GIVEN one charge line moving from `before` to `after`
    found = crossings(
        "acct-1",
        "USD",
        charges(p2026_11={"api": before}),
        charges(p2026_11={"api": after}),
        frozenset(),
        USD,
    )

    # THEN exactly the thresholds in (before, after] are crossed, with the new subtotal
    assert [str(c.threshold) for c in found] == crossed
    assert all(c.subtotal == D(after) for c in found)


def test_subtotal_adds_the_lines_of_the_period_only() -> None:
    # GIVEN two lines in November summing past 100, and October unchanged
    before = charges(p2026_10={"api": "500.00"}, p2026_11={"api": "60.00", "seats": "30.00"})
    after = charges(p2026_10={"api": "500.00"}, p2026_11={"api": "60.00", "seats": "40.00"})

    # WHEN the crossings are computed
    found = crossings("acct-1", "USD", before, after, frozenset(), USD)

    # THEN November crossed 100 at 100.00, and October's old amount alerts nothing again
    assert found == [Crossing("acct-1", "2026-11", "USD", D("100.00"), D("100.00"))]
    assert found[0].detail() == {
        "account_id": "acct-1",
        "period": "2026-11",
        "currency": "USD",
        "threshold": "100.00",
        "subtotal": "100.00",
        "set_by": "operator",
    }


def test_first_write_and_closed_periods() -> None:
    # A period's first write starts from 0; a closed period never alerts.
    after = charges(p2026_10={"api": "200.00"}, p2026_11={"api": "20.00"})
    found = crossings("acct-1", "USD", {}, after, frozenset({"2026-10"}), USD)
    assert [(c.period, str(c.threshold)) for c in found] == [("2026-11", "10.50")]


def test_no_thresholds_for_the_currency_means_no_alerts() -> None:
    after = charges(p2026_11={"api": "1000000"})
    assert crossings("acct-1", "EUR", {}, after, frozenset(), USD) == []


def test_zero_decimal_currency() -> None:
    found = crossings(
        "acct-4",
        "JPY",
        charges(p2026_11={"api": "4999"}),
        charges(p2026_11={"api": "5000"}),
        frozenset(),
        USD,
    )
    assert [c.detail()["threshold"] for c in found] == ["5000"]


# --- images -------------------------------------------------------------------------------


def test_usage_image_reads_a_ledger_item_and_ignores_the_rest() -> None:
    usage = {"2026-11": {"api": MeterUsage("sum", Aggregate(D("1534000"), 3))}}
    ledger = AccountLedger("acct-1", version=2, usage=usage, closed=frozenset({"2026-10"}))
    image = usage_image(ledger_item(ledger))
    assert image is not None
    assert image.account_id == "acct-1"
    assert image.usage == usage
    assert image.closed == frozenset({"2026-10"})
    assert usage_image(None) is None
    chunk = {"pk": {"S": "ACCOUNT#acct-1"}, "sk": {"S": "IDS#00ff"}, "ids": {"M": {}}}
    assert usage_image(chunk) is None
    archive = {"pk": {"S": "ACCOUNT#acct-1"}, "sk": {"S": "USAGE#2026-11"}, "use": {"S": "{}"}}
    assert usage_image(archive) is None


# --- publishing at most once --------------------------------------------------------------

CATALOG: Catalog = parse_catalog(
    {
        "meters": [{"name": "api", "unit": "request", "aggregation": "sum"}],
        "plans": [
            {
                "id": "pro",
                "name": "Pro",
                "currency": "USD",
                "charges": [{"meter": "api", "model": "per_unit", "unit_price": "0.01"}],
            }
        ],
    }
)
ACCOUNT = Account.model_validate(
    {
        "id": "acct-1",
        "name": "Acme",
        "email": "billing@acme.example",
        "plan": "pro",
        "timezone": "UTC",
    }
)


@dataclass
class FakeConfig:
    accounts_known: dict[str, Account] = field(default_factory=lambda: {"acct-1": ACCOUNT})
    reads: int = 0

    def catalog(self) -> Catalog:
        return CATALOG

    def accounts(self, account_ids: Any) -> dict[str, Account]:
        self.reads += 1
        return {a: self.accounts_known[a] for a in account_ids if a in self.accounts_known}


@dataclass
class FakeClaims:
    held: dict[tuple[str, str, str, Decimal], str] = field(default_factory=dict)
    released: int = 0

    def claim(self, crossing: Crossing, token: str, at: datetime) -> bool:
        key = (crossing.account_id, crossing.period, crossing.currency, crossing.threshold)
        return self.held.setdefault(key, token) == token

    def release(self, crossing: Crossing, token: str) -> None:
        key = (crossing.account_id, crossing.period, crossing.currency, crossing.threshold)
        if self.held.get(key) == token:
            del self.held[key]
            self.released += 1


@dataclass
class FakeBus:
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    down: bool = False

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        if self.down:
            raise StoreError("publish: bus unavailable")
        self.sent.append((detail_type, detail))


def image(version: int, **periods: dict[str, str]) -> dict[str, Any]:
    """A ledger item whose api usage costs these amounts at CATALOG's 0.01 a request."""
    usage = {
        period: {
            meter: MeterUsage("sum", Aggregate(amount / D("0.01"), 1))
            for meter, amount in lines.items()
        }
        for period, lines in charges(**periods).items()
    }
    return ledger_item(AccountLedger("acct-1", version=version, usage=usage))


def alerts(config: FakeConfig, claims: FakeClaims, bus: FakeBus) -> SpendAlerts:
    tokens = iter(f"token-{n}" for n in range(100))
    return SpendAlerts(
        config=config,
        claims=claims,
        events=bus,
        thresholds=USD,
        clock=lambda: datetime(2026, 11, 20, tzinfo=UTC),
        token=lambda: next(tokens),
    )


def test_a_redelivered_record_publishes_nothing_more() -> None:
    config, claims, bus = FakeConfig(), FakeClaims(), FakeBus()
    service = alerts(config, claims, bus)
    old, new = image(1, p2026_11={"api": "9.00"}), image(2, p2026_11={"api": "12.00"})
    assert [str(a.crossing.threshold) for a in service.handle(old, new)] == ["10.50"]
    assert service.handle(old, new) == []
    assert bus.sent == [
        (
            "SpendThresholdCrossed",
            {
                "account_id": "acct-1",
                "period": "2026-11",
                "currency": "USD",
                "threshold": "10.50",
                "subtotal": "12.00",
                "set_by": "operator",
            },
        )
    ]


def test_a_failed_publish_releases_its_claim_for_the_retry() -> None:
    config, claims, bus = FakeConfig(), FakeClaims(), FakeBus(down=True)
    service = alerts(config, claims, bus)
    old, new = image(1, p2026_11={"api": "9.00"}), image(2, p2026_11={"api": "12.00"})
    with pytest.raises(StoreError):
        service.handle(old, new)
    assert (claims.held, claims.released, bus.sent) == ({}, 1, [])
    bus.down = False
    assert len(service.handle(old, new)) == 1
    assert len(bus.sent) == 1


def test_writes_that_change_no_open_charges_read_no_config() -> None:
    # A write that only moved the watermark, or closed a period, or an unknown account.
    config, claims, bus = FakeConfig(accounts_known={}), FakeClaims(), FakeBus()
    service = alerts(config, claims, bus)
    same = image(1, p2026_11={"api": "50.00"})
    assert service.handle(same, image(2, p2026_11={"api": "50.00"})) == []
    assert config.reads == 0
    assert service.handle(None, image(1, p2026_11={"api": "50.00"})) == []  # unknown account
    assert (config.reads, bus.sent) == (1, [])
