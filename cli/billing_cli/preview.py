"""The whole rating and invoicing pipeline in memory, with no AWS: decode, admit, dedupe,
aggregate, then invoice. The local preview and the tests' oracle both stand on it; the
deployed rater and invoice workflow run the same steps against DynamoDB."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from billing.core.catalog import Account, Accounts, Catalog
from billing.core.credit_draws import draw
from billing.core.events import Rejection, decode_record
from billing.core.invoice import Invoice, build_invoice, invoice_number
from billing.core.periods import Period, zone
from billing.core.phases import Phases
from billing.core.unpriced import unpriced_dimension, value_label
from billing.core.unpriced_usage import UnpricedView, unpriced_usage
from billing.core.usage import UsageKey, UsageLedger, filter_keys, stream_order
from billing.invoicing.due import DEFAULT_GRACE
from billing.rating.intake import Accepted, IsClosed, admit, never_closed


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    position: int
    raw: bytes
    rejection: Rejection


@dataclass
class RatingSummary:
    """Where every record went: records = rated + duplicates + sum(rejected)."""

    records: int = 0
    rated: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "rated": self.rated,
            "duplicates": self.duplicates,
            "rejected": dict(sorted(self.rejected.items())),
        }

    @property
    def balanced(self) -> bool:
        return balanced(self.to_json())


def balanced(summary: Mapping[str, Any]) -> bool:
    """Records in = rated + duplicates + rejected: every record ended in exactly one place
    (`summary` as RatingSummary.to_json and `billing run`'s summary.json write it)."""
    ended = summary["rated"] + summary["duplicates"] + sum(summary["rejected"].values())
    return bool(ended == summary["records"])


@dataclass
class RatingRun:
    ledger: UsageLedger = field(default_factory=UsageLedger)
    summary: RatingSummary = field(default_factory=RatingSummary)
    rejected: list[RejectedRecord] = field(default_factory=list)


def add_to_ledger(
    ledger: UsageLedger, accepted: Accepted, catalog: Catalog, position: int = 0
) -> None:
    """One accepted event added up; `position` is its place in the file, which stands for
    its place on the stream (`billing run` puts the records on it in file order)."""
    event, account = accepted.event, accepted.account
    meter = catalog.meters_by_name[event.meter]
    key, plan = event.meter, accepted.plan
    if account.changes:  # priced under the plan in force on the event's local day
        phases = Phases(account, catalog)
        key, plan = phases.placed(event.meter, event.timestamp.at, accepted.period)
    keys = filter_keys(plan, event.meter, event.dimensions)
    dimension = unpriced_dimension(plan, event.meter)
    # No filtered charge of the meter took it: unpriced (billing.core.unpriced).
    unpriced = None if dimension is None or keys else value_label(event.dimensions.get(dimension))
    ledger.add(
        UsageKey(event.account_id, str(accepted.period), key),
        meter,
        event.quantity,
        keys,
        dimensions=event.dimensions,
        last=stream_order(event.timestamp, position),
        unpriced=unpriced,
    )


def rate_records(
    records: Iterable[bytes],
    catalog: Catalog,
    accounts: Accounts,
    now: datetime,
    is_closed: IsClosed = never_closed,
) -> RatingRun:
    """Rate records in order; the first event seen with an account's event_id wins."""
    run = RatingRun()
    seen: set[tuple[str, str]] = set()
    for position, raw in enumerate(records):
        run.summary.records += 1
        decoded = decode_record(raw)
        outcome = (
            decoded
            if isinstance(decoded, Rejection)
            else admit(decoded, catalog, accounts.by_id, now, is_closed)
        )
        if isinstance(outcome, Rejection):
            run.summary.rejected[outcome.reason] += 1
            run.rejected.append(RejectedRecord(position, raw, outcome))
            continue
        identity = (outcome.event.account_id, outcome.event.event_id)
        if identity in seen:
            run.summary.duplicates += 1
            continue
        seen.add(identity)
        add_to_ledger(run.ledger, outcome, catalog, position)
        run.summary.rated += 1
    return run


def invoice_period(
    period: Period,
    catalog: Catalog,
    accounts: Accounts,
    ledger: UsageLedger,
    issued_at: datetime,
    first_sequence: int = 1,
) -> list[Invoice]:
    """One invoice per account whose subscription overlaps `period`, numbered in file order,
    drawing on its prepaid grants as the first invoice a fresh deployment issues does."""
    invoices: list[Invoice] = []
    for account in accounts.accounts:
        if not account.overlaps(period):
            continue
        invoices.append(
            _with_credits(
                account,
                build_invoice(
                    account,
                    catalog.plans_by_id[account.plan],
                    catalog,
                    period,
                    ledger.for_account(account.id, str(period)),
                    number=invoice_number(first_sequence + len(invoices), issued_at),
                    issued_at=issued_at,
                ),
            )
        )
    return invoices


def unpriced_period(
    period: Period, catalog: Catalog, accounts: Accounts, ledger: UsageLedger
) -> dict[str, tuple[UnpricedView, ...]]:
    """Per account with any in `period`, the usage no charge of its plan took: rated, on
    no invoice line (billing.core.unpriced_usage)."""
    found = {}
    for account in accounts.accounts:
        if account.overlaps(period):
            views = unpriced_usage(
                account, catalog, period, ledger.for_account(account.id, str(period))
            )
            if views:
                found[account.id] = views
    return found


def _with_credits(account: Account, invoice: Invoice) -> Invoice:
    if not account.credits:
        return invoice
    return replace(invoice, credits=draw(account.credits, {}, invoice.period, invoice.total))


def invoice_run_clock(
    period: Period, accounts: Accounts, grace: timedelta = DEFAULT_GRACE
) -> datetime:
    """When the invoice run for `period` starts: its latest end among the accounts' time
    zones, plus the grace time for late events."""
    zones = {account.timezone for account in accounts.accounts} or {"UTC"}
    return max(period.end(zone(name)) for name in zones).astimezone(UTC) + grace
