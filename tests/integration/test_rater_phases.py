"""A plan change whose boundary falls inside one batch (CONTRACT.md 2a, "Rating under
phases"), on moto: each event is priced under the plan of its local day, whatever the
batch's boundaries, and a lost acknowledgement, a retry and a second environment
replaying the batch change nothing."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from billing.core.catalog import Account, parse_accounts
from billing.customer.usage_view import usage_report
from billing.rating.ledger import AccountLedger
from billing.store.config_store import ConfigStore
from billing.store.ledger_store import LEDGER_SORT_KEY
from tests.integration.conftest import NOW, Aws
from tests.integration.test_rater_exactly_once import event, outcomes
from tests.support.esm_driver import UNKNOWN, OutcomeLog
from tests.support.faults import Fault, FaultyDynamoDB, touches
from tests.support.kinesis import shard
from tests.unit.test_phases import CATALOG, NOV

ACCOUNT: dict[str, Any] = {
    "id": "acct-ph",
    "name": "Upgrader",
    "email": "ap@upgrader.example",
    "plan": "starter",
    "timezone": "America/New_York",
    "start": "2026-09-01",
    "changes": [{"effective": "2026-11-15", "plan": "pro"}],
}


def interleaved() -> list[dict[str, Any]]:
    """20 events of each phase, alternating: 23:mm on 14 Nov in New York (EST, UTC-5), then
    00:mm on 15 Nov; every other one of the later ones in region eu."""
    records = []
    for n in range(20):
        records.append(
            event(f"b{n}", "acct-ph", meter="api", quantity=10, at=f"2026-11-15T04:{n:02d}:00Z")
        )
        region = {"region": "eu"} if n % 2 else None
        records.append(
            event(
                f"a{n}",
                "acct-ph",
                meter="api",
                quantity=10,
                at=f"2026-11-15T05:{n:02d}:00Z",
                dimensions=region,
            )
        )
    return records


def test_a_batch_across_a_plan_change_is_rated_once_under_each_phases_plan(aws: Aws) -> None:
    # GIVEN acct-ph moving from starter to pro at its local midnight starting 15 November,
    # and one batch of 40 events interleaving both phases, whose ledger write lands but
    # whose acknowledgement is lost
    ConfigStore(aws.dynamodb, aws.config_table).put_catalog(CATALOG)
    accounts = parse_accounts({"accounts": [ACCOUNT]}, CATALOG)
    aws.push_accounts(accounts)
    records = shard(interleaved())
    client = FaultyDynamoDB(aws.dynamodb)
    service = aws.service(dynamodb=client)
    client.fail_next(Fault.LOST_ACK, touches("acct-ph", LEDGER_SORT_KEY))
    log = OutcomeLog()
    lost = service.process(records)
    log.add(records, lost)
    assert client.injected == {Fault.LOST_ACK: 1}

    # WHEN Lambda retries from the lowest failed record, and then another (cold)
    # environment is given the whole batch again
    resume = min((records.index(r) for r in lost.failed), default=len(records))
    retry = service.process(records[resume:])
    log.add(records[resume:], retry)
    again = aws.service().process(records)

    # THEN every event counts once, in its own phase's aggregates
    ledger = aws.ledger_store().load(["acct-ph"])["acct-ph"]
    finals = Counter(log.finals(records).values())
    stored = ledger.usage["2026-11"]
    observed = {
        "rated or replayed": finals["rated"] + finals[UNKNOWN],
        "applied twice": log.applied_twice,
        "second environment": outcomes(records, again) - Counter({"replayed": 40}),
        "stored": {
            key: (usage.total.quantity, usage.total.events, dict(usage.by_filter))
            for key, usage in stored.items()
        },
    }
    eu = stored["api@2026-11-15"].by_filter
    assert observed == {
        "rated or replayed": 40,
        "applied twice": [],
        "second environment": Counter(),
        "stored": {
            "api": (Decimal(200), 20, {}),  # starter prices no filter: no share kept
            "api@2026-11-15": (Decimal(200), 20, dict(eu)),
        },
    }
    assert {key: (a.quantity, a.events) for key, a in eu.items()} == {
        "region=eu": (Decimal(100), 10)
    }

    # AND the invoice the period would get prices each phase on its own
    assert preview_amounts(accounts.accounts[0], ledger) == PREVIEW


# starter, 1-14 Nov (14 of 30 days): api 200 → 100 × 0.10 + 1.00 = 11.00; fixed
# 30.00 × 14/30 = 14.00; minimum 60.00 × 14/30 = 28.00, owed 28.00 - 25.00 = 3.00.
# pro, 15-30 Nov (16 days): api 200, tiers from 0 again → 11.00; EU 100 × 0.01 = 1.00;
# seats 0.00; fixed 90.00 × 16/30 = 48.00. Subtotal 88.00, no tax.
PREVIEW = (
    [
        ("starter", "11.00"),
        ("starter", "14.00"),
        ("starter", "3.00"),
        ("pro", "11.00"),
        ("pro", "1.00"),
        ("pro", "0.00"),
        ("pro", "48.00"),
    ],
    "88.00",
)


def preview_amounts(account: Account, ledger: AccountLedger) -> tuple[list[tuple[str, str]], str]:
    preview = usage_report(account, CATALOG, ledger, NOV, now=NOW).to_json()["invoice_preview"]
    return [(line["plan"], line["amount"]) for line in preview["lines"]], preview["total"]
