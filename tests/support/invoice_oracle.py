"""An oracle for the example accounts' invoices that shares no code with `billing`: the
rating rules of CONTRACT.md section 3 in plain Decimal arithmetic, over the example catalog
and accounts as YAML documents (not as the project parses them).

Prices, proration by active days, the minimum commitment, tax and rounding (half up, once,
to the currency's minor unit) are each a few lines here; the quantities come from the
rating oracle (tests/support/oracle.py). The example catalog needs none of the contract's
later additions (plan changes, discounts, credits, unique_count, latest).
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import Any

import yaml

from tests.support.oracle import Oracle

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CATALOG: dict[str, Any] = yaml.safe_load((EXAMPLES / "catalog.yaml").read_text("utf-8"))
ACCOUNTS: dict[str, Any] = yaml.safe_load((EXAMPLES / "accounts.yaml").read_text("utf-8"))
PLANS = {plan["id"]: plan for plan in CATALOG["plans"]}
# ISO 4217 minor units of the example currencies.
MINOR_DIGITS = {"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3}
# November 2026, as local calendar days.
FIRST_DAY, END_DAY, DAYS = date(2026, 11, 1), date(2026, 12, 1), 30

D = Decimal


def exact() -> Any:
    """Far more digits than any amount here has: nothing is rounded before it should be."""
    return localcontext(prec=100)


def rounded(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(D(1).scaleb(-MINOR_DIGITS[currency]), rounding=ROUND_HALF_UP)


def price(charge: dict[str, Any], quantity: Decimal) -> Decimal:
    """A charge's exact amount for a period's quantity."""
    with exact():
        model = charge["model"]
        if model == "per_unit":
            return quantity * D(charge["unit_price"])
        if model == "package":
            packages = (quantity / D(str(charge["package_size"]))).to_integral_value(ROUND_CEILING)
            return packages * D(charge["package_price"])
        tiers = [
            (
                None if t["up_to"] is None else D(str(t["up_to"])),
                D(t["unit_price"]),
                D(t.get("flat_fee", "0")),
            )
            for t in charge["tiers"]
        ]
        if model == "volume":
            if quantity == 0:
                return D(0)
            for up_to, unit_price, fee in tiers:
                if up_to is None or quantity <= up_to:
                    return quantity * unit_price + fee
        assert model == "graduated", model
        amount, lower = D(0), D(0)
        for up_to, unit_price, fee in tiers:
            inside = (quantity if up_to is None else min(quantity, up_to)) - lower
            if inside > 0:
                amount += inside * unit_price + fee
            lower = up_to if up_to is not None else lower
        return amount


def active_days(account: dict[str, Any]) -> int:
    """The account's subscribed days of November 2026 (`end` exclusive)."""
    start = date.fromisoformat(account["start"]) if account.get("start") else FIRST_DAY
    end = date.fromisoformat(account["end"]) if account.get("end") else END_DAY
    return max((min(end, END_DAY) - max(start, FIRST_DAY)).days, 0)


def plain(quantity: Decimal) -> str:
    """A quantity as the invoice writes it: no exponent, no trailing zeros."""
    text = format(quantity, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def expected_invoice(account_id: str, rating: Oracle) -> dict[str, Any]:
    """The account's November 2026 invoice, in tests/support/examples.invoice_view's shape."""
    account = next(a for a in ACCOUNTS["accounts"] if a["id"] == account_id)
    plan = PLANS[account["plan"]]
    currency = plan["currency"]
    lines: list[tuple[str, str | None, str, Decimal]] = []
    for charge in plan["charges"]:
        meter = charge["meter"]
        if charge.get("filters"):
            key = (account_id, "2026-11", meter, charge["description"])
            quantity = rating.shares.get(key, D(0))
        else:
            quantity = rating.aggregates.get((account_id, "2026-11", meter), (D(0), 0))[0]
        lines.append(("usage", meter, plain(quantity), rounded(price(charge, quantity), currency)))
    days = active_days(account)
    with exact():
        if "fixed_fee" in plan:
            fee = rounded(D(plan["fixed_fee"]) * days / DAYS, currency)
            lines.append(("fixed", None, "1", fee))
        so_far = sum((amount for *_, amount in lines), D(0))
        if "minimum_commitment" in plan:
            minimum = rounded(D(plan["minimum_commitment"]) * days / DAYS, currency)
            if so_far < minimum:
                lines.append(("minimum", None, "1", minimum - so_far))
        subtotal = sum((amount for *_, amount in lines), rounded(D(0), currency))
        tax = rounded(subtotal * D(account.get("tax_rate", "0")), currency)
    return {
        "currency": currency,
        "lines": [(kind, meter, quantity, str(amount)) for kind, meter, quantity, amount in lines],
        "totals": (str(subtotal), str(tax), str(subtotal + tax)),
    }
