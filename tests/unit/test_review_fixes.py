"""Edge cases found in review: values that must be refused cleanly or printed exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.core.catalog import parse_accounts, parse_catalog
from billing.core.events import Reason, Rejection, decode_record
from billing.core.invoice import build_invoice
from billing.core.money import plain_quantity
from billing.core.periods import Period


@pytest.mark.parametrize(
    "timestamp", ["0001-01-01T00:00:00Z", "0001-01-01T12:00:00+05:00", "9999-12-31T23:59:59Z"]
)
def test_timestamps_at_the_ends_of_the_calendar_are_schema_invalid(timestamp: str) -> None:
    record = (
        '{"event_id":"e","account_id":"acct-1","meter":"api_requests","quantity":1,'
        f'"timestamp":"{timestamp}"}}'
    ).encode()
    result = decode_record(record)
    assert isinstance(result, Rejection)
    assert result.reason is Reason.SCHEMA_INVALID
    assert "out of range" in result.message


@pytest.mark.parametrize("offset", ["+05:60", "+24:00", "-99:00"])
def test_offsets_outside_rfc_3339_are_refused(offset: str) -> None:
    record = (
        '{"event_id":"e","account_id":"acct-1","meter":"api_requests","quantity":1,'
        f'"timestamp":"2026-11-05T10:00:00{offset}"}}'
    ).encode()
    result = decode_record(record)
    assert isinstance(result, Rejection)
    assert result.reason is Reason.SCHEMA_INVALID


def test_quantities_past_28_digits_print_exactly() -> None:
    # 11 × 999999999999999.999999999999, summed exactly
    total = Decimal("10999999999999999.999999999989")
    assert plain_quantity(total) == "10999999999999999.999999999989"
    assert plain_quantity(Decimal("1.500E+3")) == "1500"


def test_an_invoice_with_nothing_to_charge_still_prints_minor_units() -> None:
    catalog = parse_catalog(
        {
            "meters": [{"name": "m", "unit": "u", "aggregation": "sum"}],
            "plans": [{"id": "free", "name": "Free", "currency": "USD"}],
        }
    )
    account = parse_accounts(
        {
            "accounts": [
                {"id": "a", "name": "A", "email": "a@b.example", "plan": "free", "timezone": "UTC"}
            ]
        },
        catalog,
    ).accounts[0]
    invoice = build_invoice(
        account,
        catalog.plans_by_id["free"],
        catalog,
        Period(2026, 11),
        {},
        number="INV-2026-000001",
        issued_at=datetime(2026, 12, 1, 1, tzinfo=UTC),
    ).to_json()
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("0.00", "0.00", "0.00")
