"""The chaos run: `python -m tests.chaos.runner [--events N] [--accounts N] [--seed N]`.

Generates the workload, rates it under faults (rating.py), invoices it under faults
(invoicing.py), checks everything against the independent oracle (oracle.py) and prints a
one-screen report. Exits 1 when any check fails."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from billing.core.catalog import parse_accounts, parse_catalog
from tests.chaos import oracle, workload
from tests.chaos.faults import FaultRates
from tests.chaos.invoicing import InvoicingRun, invoice
from tests.chaos.rating import RatingRun, rate
from tests.support.esm_driver import UNKNOWN

CI_EVENTS, CI_ACCOUNTS = 2_500, 20
FULL_EVENTS, FULL_ACCOUNTS = 200_000, 1_000


@dataclass
class Result:
    counts: dict[str, Any] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)
    conservation: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, Any] = field(default_factory=dict)
    examples: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not any(self.problems.values())


def _differences(got: dict[Any, Any], want: dict[Any, Any]) -> dict[Any, Any]:
    return {
        k: {"got": got.get(k), "expected": want.get(k)}
        for k in sorted(set(got) | set(want), key=str)
        if got.get(k) != want.get(k)
    }


def check_rating(
    result: Result, run: RatingRun, expected: oracle.Oracle, account_ids: list[str]
) -> None:
    records = run.records()
    finals = run.outcomes.finals(records)
    want = {
        (r.shard_id, r.sequence_number): expected.outcomes[
            run.producer_order[(r.shard_id, r.sequence_number)]
        ]
        for r in records
    }
    reported = Counter(
        "rejected" if v not in ("rated", "duplicate", UNKNOWN) else v for v in finals.values()
    )
    wrong_finals = Counter(
        (want[p], finals[p[1]])
        for p in want
        if finals[p[1]] != UNKNOWN
        and finals[p[1]] != ("rejected" if want[p] not in ("rated", "duplicate") else want[p])
    )
    aggregates = _differences(run.aggregates(account_ids), oracle.aggregates(expected))
    kept = run.quarantined()
    should_keep = {p: reason for p, reason in want.items() if reason not in ("rated", "duplicate")}
    stored_events = sum(events for _, events in run.aggregates(account_ids).values())
    oracle_counts = Counter(
        "rejected" if o not in ("rated", "duplicate") else o for o in expected.outcomes
    )
    result.conservation = {
        "records in": len(records),
        "rated (events in the ledgers)": stored_events,
        "duplicates (oracle)": oracle_counts["duplicate"],
        "rejected (records in the quarantine)": len(kept),
        "in = rated + duplicates + rejected": len(records)
        == stored_events + oracle_counts["duplicate"] + len(kept),
        "oracle: rated / duplicate / rejected": [
            oracle_counts["rated"],
            oracle_counts["duplicate"],
            oracle_counts["rejected"],
        ],
        "reported finals: rated / duplicate / rejected / answer lost": [
            reported["rated"],
            reported["duplicate"],
            reported["rejected"],
            reported[UNKNOWN],
        ],
    }
    result.problems |= {
        "aggregates differing from the oracle": len(aggregates),
        "aggregates differing, by meter": dict(
            Counter(key[2].split("@")[0] for key in aggregates).most_common()
        ),
        "records applied twice (reported)": len(run.outcomes.applied_twice),
        "final outcomes differing from the oracle": sum(wrong_finals.values()),
        "quarantine != records the oracle rejects": len(set(kept) ^ set(should_keep)),
        "quarantined with another reason": sum(
            1 for p, r in kept.items() if should_keep.get(p, r) != r
        ),
        "events in ledgers != oracle's rated": stored_events != oracle_counts["rated"],
        "shards read before their parents": _child_first(run),
    }
    result.examples["aggregates"] = {
        str(k): {a: str(b) for a, b in v.items()} for k, v in list(aggregates.items())[:3]
    }
    result.examples["final outcomes"] = {str(k): n for k, n in wrong_finals.most_common(3)}


def _child_first(run: RatingRun) -> int:
    order = run.mapping.log.order
    return sum(
        1
        for s in run.stream.shards.values()
        for p in s.parents
        if order.index(p) > order.index(s.shard_id)
    )


LINE_KEYS = ("kind", "meter", "filters", "discount", "amount", "plan", "from", "to")
TOP_KEYS = ("currency", "subtotal", "tax", "total", "credits", "credits_applied", "amount_due")


def comparable(document: dict[str, Any], several_phases: bool) -> dict[str, Any]:
    """An invoice cut to what the oracle computes: quantities as Decimals; a one-phase
    invoice's phase fields left out (the contract lets it carry them)."""
    keys = LINE_KEYS if several_phases else LINE_KEYS[:5]
    lines = [
        {k: line[k] for k in keys if k in line} | {"quantity": Decimal(line["quantity"])}
        for line in document["lines"]
    ]
    return {k: document.get(k) for k in TOP_KEYS} | {"lines": lines}


def check_invoices(
    result: Result,
    run: InvoicingRun,
    expected: dict[tuple[str, str], dict[str, Any]],
    emails: dict[str, str],
) -> None:
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for document in run.documents:
        by_key.setdefault((document["account_id"], document["period"]), []).append(document)
    numbers = sorted(int(d["invoice_number"].rsplit("-", 1)[1]) for d in run.documents)
    owner = {d["invoice_number"]: (d["account_id"], d["period"]) for d in run.documents}
    wrong = {
        key: True
        for key, want in expected.items()
        if key in by_key
        and comparable(by_key[key][0], any("plan" in line for line in want["lines"]))
        != {k: want[k] for k in (*TOP_KEYS, "lines")}
    }
    per_invoice = Counter(name.removesuffix(".pdf") for _, name in run.emails)
    wrong_address = sum(
        1
        for to, name in run.emails
        if name.removesuffix(".pdf") in owner
        and emails[owner[name.removesuffix(".pdf")][0]] not in to
    )
    announced: dict[str, set[str]] = {}
    for event in run.issued_events:
        announced.setdefault(event["detail"]["invoice_number"], set()).add(
            event["detail"]["event_id"]
        )
    result.problems |= {
        "invoices differing from the oracle": len(wrong),
        "invoices missing": len(set(expected) - set(by_key)),
        "invoices not expected": len(set(by_key) - set(expected)),
        "account-periods with two invoices": sum(1 for docs in by_key.values() if len(docs) > 1),
        "invoice numbers missing or repeated": numbers != list(range(1, len(numbers) + 1)),
        "invoices emailed twice": sum(1 for n in per_invoice.values() if n > 1),
        "emails to another address or of no invoice": wrong_address
        + sum(1 for n in per_invoice if n not in owner),
        "InvoiceIssued lost": len(set(owner) - set(announced)),
        "InvoiceIssued with two event ids": sum(1 for ids in announced.values() if len(ids) > 1),
    }
    result.counts |= {
        "invoices": len(run.documents),
        "emails": len(run.emails),
        "invoices not emailed": len(set(owner) - set(per_invoice)),
        "InvoiceIssued events delivered (at least once each)": len(run.issued_events),
    }
    result.examples["invoices not expected"] = sorted(set(by_key) - set(expected))[:5]
    if wrong:
        key = next(iter(wrong))
        want = expected[key]
        several = any("plan" in line for line in want["lines"])
        result.examples["invoice"] = {
            "key": list(key),
            "got": json.loads(json.dumps(comparable(by_key[key][0], several), default=str)),
            "expected": json.loads(
                json.dumps({k: want[k] for k in (*TOP_KEYS, "lines")}, default=str)
            ),
        }


@dataclass(frozen=True)
class Settings:
    events: int = FULL_EVENTS
    accounts: int = FULL_ACCOUNTS
    seed: int = 20261219
    rates: FaultRates = field(default_factory=FaultRates)
    reshard_ties: int = workload.RESHARD_TIES
    invoicing: bool = True  # False: the rating half alone


def _progress(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def run(settings: Settings) -> Result:
    result = Result()
    _progress(f"workload: {settings.events} records, {settings.accounts} accounts")
    started = time.perf_counter()
    rng = random.Random(settings.seed)
    book = workload.accounts(rng, settings.accounts)
    sent = workload.records(rng, book, settings.events, settings.reshard_ties)
    catalog = parse_catalog(workload.catalog())
    parsed = parse_accounts(book, catalog)
    expected = oracle.Oracle(workload.catalog(), book, workload.RATE_CLOCK)
    expected.judge_all([s.data for s in sent])
    assert [s.meant for s in sent] == expected.outcomes, "the oracle disagrees with the generator"
    invoices = oracle.invoices(expected, workload.PERIODS)
    result.seconds["workload and oracle"] = time.perf_counter() - started
    _progress("rating")
    mark = time.perf_counter()
    rating = rate(catalog, parsed, sent, rng, settings.rates, _progress)
    result.seconds["rating"] = time.perf_counter() - mark
    ids = [a["id"] for a in book["accounts"]]
    check_rating(result, rating, expected, ids)
    invoicing = InvoicingRun()
    if settings.invoicing:
        _progress("invoicing")
        mark = time.perf_counter()
        invoicing = invoice(catalog, parsed, rating.table, sorted(invoices))
        result.seconds["invoicing"] = time.perf_counter() - mark
        check_invoices(result, invoicing, invoices, {a["id"]: a["email"] for a in book["accounts"]})
    _faults(result, sent, rating, invoicing)
    result.counts |= {
        "seed": settings.seed,
        "accounts": settings.accounts,
        "records": len(sent),
        "latest ties across the reshard": settings.reshard_ties,
        "invoice runs": invoicing.runs,
    }
    result.seconds["total"] = time.perf_counter() - started
    return result


def _faults(
    result: Result, sent: list[workload.Sent], rating: RatingRun, invoicing: InvoicingRun
) -> None:
    meant = Counter(s.meant for s in sent)
    log = rating.mapping.log
    result.faults = {
        "producer duplicates (new sequence numbers)": meant["duplicate"],
        "poison pills and bad records, by reason": {
            k: v for k, v in sorted(meant.items()) if k not in ("rated", "duplicate")
        },
        "reshard": rating.stream.events,
        "records per shard": {s.shard_id: len(s.records) for s in rating.stream.shards.values()},
        "invocations / partial failures": [log.invocations, log.partial_failures],
        "batches delivered again after success": log.redelivered,
        **dict(rating.plan.injected),
        "crashed invocations": log.crashed,
        "conditional checks failed (ledger races)": rating.table.conditional_failures,
        "invocations by environment": dict(log.by_environment),
        "invoice step killed after emails": invoicing.killed_after_emails,
        "invoice runs at once": 2 if invoicing.runs else 0,
        **dict(invoicing.refusals),
    }


def report(result: Result) -> str:
    lines = [f"chaos run: {'PASSED' if result.passed else 'FAILED'}"]
    for title, part in (
        ("counts", result.counts),
        ("faults injected", result.faults),
        ("conservation", result.conservation),
        ("mismatches", result.problems),
    ):
        lines.append(f"-- {title}")
        lines += [f"  {k}: {json.dumps(v, default=str)}" for k, v in part.items()]
    lines.append("-- seconds: " + json.dumps({k: round(v, 1) for k, v in result.seconds.items()}))
    for name, example in result.examples.items():
        if example:
            lines.append(f"-- first {name} differing: {json.dumps(example, default=str)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=FULL_EVENTS)
    parser.add_argument("--accounts", type=int, default=FULL_ACCOUNTS)
    parser.add_argument("--seed", type=int, default=Settings.seed)
    parser.add_argument(
        "--reshard-ties",
        type=int,
        default=workload.RESHARD_TIES,
        help="accounts with two `latest` events at one instant across the reshard (0: none)",
    )
    args = parser.parse_args(argv)
    result = run(Settings(args.events, args.accounts, args.seed, reshard_ties=args.reshard_ties))
    print(report(result))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
