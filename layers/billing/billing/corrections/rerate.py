"""What a period's aggregates and invoices would be if its usage were rated again from the
raw archive, with the current catalog or another, against what is stored (a dry run).

The replay (`billing.corrections.replay`) reads every record that arrived from
`LOOKBACK` before the period's first possible start until now: enough for the dedupe
window (an event id claimed within 35 days before counts the resend as a duplicate, in
whichever period its timestamp falls), so the replay decides each of the period's records
as the rater did. The records the rater refused as PERIOD_CLOSED (the quarantine says
which) are refused again, except those of the period being re-rated: a correction counts
its late events, and reports them apart.

The stored side is the invoice as issued (its JSON in S3) or, for an open period, the
invoice the ledger's usage would give now under the current catalog; the re-rated side
is the invoice the replayed usage gives under the chosen catalog, with the same number
and issue time. Lines are matched by what they price (kind, meter, filters, phase,
discount) so a catalog that adds or drops a charge shows as a line added or dropped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Protocol

from billing.core.catalog import Account, Catalog
from billing.core.events import UsageEvent, decode_record
from billing.core.invoice import build_invoice
from billing.core.periods import Period
from billing.core.usage import MeterUsage
from billing.corrections.replay import Replay, replay, stream_records
from billing.rating.records import Outcome, StreamRecord
from billing.store.invoice_records import InvoiceRecord

# The dedupe window (35 days) and a day for the earliest time zone's start of the month.
LOOKBACK: Final = timedelta(days=37)
_PRICED_FIELDS: Final = ("subtotal", "tax", "total")


class ArchiveSource(Protocol):
    def records_between(self, start: datetime, end: datetime) -> Any: ...


class ConfigReader(Protocol):
    def catalog(self) -> Catalog: ...
    def accounts(self, account_ids: Sequence[str]) -> dict[str, Account]: ...
    def all_accounts(self) -> list[Account]: ...


class LedgerReader(Protocol):
    def load(self, account_ids: Sequence[str], *, fresh: bool = False) -> Any: ...
    def period_usage(self, ledger: Any, period: str) -> dict[str, MeterUsage]: ...
    def archived_usage(self, account_id: str, period: str) -> dict[str, MeterUsage]: ...


class RefusalReader(Protocol):
    def refused_as_closed(self, since: datetime) -> set[tuple[str, str]]: ...


class InvoiceReader(Protocol):
    def for_account(self, account_id: str) -> list[InvoiceRecord]: ...


class DocumentReader(Protocol):
    def get(self, key: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class LineChange:
    """One line, as stored and as re-rated (None where the line is on one side only)."""

    key: str  # what the line prices, e.g. `usage api_requests` or `usage storage {"region"…}`
    description: str
    stored: Mapping[str, Any] | None
    rerated: Mapping[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        def side(line: Mapping[str, Any] | None) -> dict[str, str] | None:
            return None if line is None else {k: line[k] for k in ("quantity", "amount")}

        return {
            "line": self.key,
            "description": self.description,
            "stored": side(self.stored),
            "rerated": side(self.rerated),
        }


@dataclass(frozen=True, slots=True)
class AccountRerate:
    """One account's period, stored and re-rated."""

    account_id: str
    period: str
    invoice_number: str | None  # None: the period is not invoiced
    currency: str
    stored: Mapping[str, str]  # subtotal, tax, total
    rerated: Mapping[str, str]
    lines: tuple[LineChange, ...]  # only the lines that differ
    late_events: int  # rated now that the rater refused as PERIOD_CLOSED

    @property
    def difference(self) -> Decimal:
        """Re-rated total minus stored total: above 0 an undercharge, below 0 an overcharge."""
        return Decimal(self.rerated["total"]) - Decimal(self.stored["total"])

    @property
    def changed(self) -> bool:
        return bool(self.lines) or dict(self.stored) != dict(self.rerated)

    def to_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "period": self.period,
            "invoice_number": self.invoice_number,
            "currency": self.currency,
            "stored": dict(self.stored),
            "rerated": dict(self.rerated),
            "difference": str(self.difference),
            "lines": [line.to_json() for line in self.lines],
            "late_events": self.late_events,
        }


@dataclass
class RerateReport:
    period: str
    catalog: str  # "current" or the given file's name
    accounts: list[AccountRerate] = field(default_factory=list)
    records_read: int = 0

    def to_json(self) -> dict[str, Any]:
        changed = [account for account in self.accounts if account.changed]
        return {
            "period": self.period,
            "catalog": self.catalog,
            "records_read": self.records_read,
            "accounts": len(self.accounts),
            "accounts_changed": len(changed),
            "changes": [account.to_json() for account in changed],
        }


class _Config:
    """The live accounts under the chosen catalog: what the replay rates against."""

    def __init__(self, live: ConfigReader, catalog: Catalog) -> None:
        self._live, self._catalog = live, catalog

    def catalog(self) -> Catalog:
        return self._catalog

    def accounts(self, account_ids: Sequence[str]) -> dict[str, Account]:
        return self._live.accounts(account_ids)


@dataclass
class Rerate:
    archive: ArchiveSource
    config: ConfigReader
    ledgers: LedgerReader
    invoices: InvoiceReader
    documents: DocumentReader
    quarantine: RefusalReader

    def dry_run(
        self,
        period: Period,
        *,
        account_id: str | None = None,
        catalog: Catalog | None = None,
        catalog_name: str = "current",
        now: datetime | None = None,
    ) -> RerateReport:
        now = now or datetime.now(UTC)
        accounts = self._accounts(period, account_id)
        start = datetime(period.year, period.month, 1, tzinfo=UTC) - LOOKBACK
        records = stream_records(self.archive.records_between(start, now))
        chosen = catalog or self.config.catalog()
        refused = self.quarantine.refused_as_closed(since=start)
        late = _late_positions(records, refused, {a.id: a for a in accounts}, period)
        replayed = replay(records, _Config(self.config, chosen), refused - late.keys())
        late_events = Counter(
            late[position]
            for r in replayed.records
            if r.outcome == Outcome.RATED
            and (position := (r.result.record.shard_id, r.result.record.sequence_number)) in late
        )
        report = RerateReport(str(period), catalog_name, records_read=len(records))
        for account in accounts:
            issued = [r for r in self.invoices.for_account(account.id) if r.period == str(period)]
            report.accounts.append(
                self._account(
                    account,
                    period,
                    chosen,
                    replayed,
                    issued[0] if issued else None,
                    late_events[account.id],
                )
            )
        return report

    def _accounts(self, period: Period, account_id: str | None) -> list[Account]:
        if account_id is not None:
            found = self.config.accounts([account_id])
            if account_id not in found:
                raise LookupError(f"no account {account_id!r}")
            return [found[account_id]]
        return [a for a in self.config.all_accounts() if a.overlaps(period)]

    def _account(
        self,
        account: Account,
        period: Period,
        catalog: Catalog,
        replayed: Replay,
        record: InvoiceRecord | None,
        late: int,
    ) -> AccountRerate:
        label = str(period)
        if record is not None and record.json_key is not None:
            stored = json.loads(self.documents.get(record.json_key))
            number, issued_at = stored["invoice_number"], _instant(stored["issued_at"])
        else:
            ledger = self.ledgers.load([account.id], fresh=True)[account.id]
            usage = (
                self.ledgers.archived_usage(account.id, label)
                if label in ledger.closed
                else self.ledgers.period_usage(ledger, label)
            )
            current = self.config.catalog()
            number, issued_at = "PREVIEW", datetime.now(UTC)
            stored = _invoice(account, current, period, usage, number, issued_at)
        rerated = _invoice(
            account, catalog, period, replayed.usage(account.id, label), number, issued_at
        )
        return AccountRerate(
            account_id=account.id,
            period=label,
            invoice_number=record.invoice_number if record is not None else None,
            currency=stored["currency"],
            stored={name: stored[name] for name in _PRICED_FIELDS},
            rerated={name: rerated[name] for name in _PRICED_FIELDS},
            lines=_changed_lines(stored["lines"], rerated["lines"]),
            late_events=late,
        )


def _invoice(
    account: Account,
    catalog: Catalog,
    period: Period,
    usage: Mapping[str, MeterUsage],
    number: str,
    issued_at: datetime,
) -> dict[str, Any]:
    plan = catalog.plans_by_id[account.plan]
    built = build_invoice(account, plan, catalog, period, usage, number=number, issued_at=issued_at)
    return built.to_json()


def line_key(line: Mapping[str, Any]) -> str:
    """What a line prices, as text: kind, then meter, filters, phase or discount."""
    parts = [line["kind"]]
    for name in ("meter", "discount", "plan", "from"):
        if name in line:
            parts.append(str(line[name]))
    if "filters" in line:
        parts.append(json.dumps(line["filters"], sort_keys=True, ensure_ascii=False))
    if line["kind"] == "fixed":
        parts.append(line["description"])
    return " ".join(parts)


def _changed_lines(
    stored: Sequence[Mapping[str, Any]], rerated: Sequence[Mapping[str, Any]]
) -> tuple[LineChange, ...]:
    before = {line_key(line): line for line in stored}
    after = {line_key(line): line for line in rerated}
    changes = []
    for key in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(key), after.get(key)
        if old is not None and new is not None and _priced(old) == _priced(new):
            continue
        description = (new or old or {}).get("description", "")
        changes.append(LineChange(key, description, old, new))
    return tuple(changes)


def _priced(line: Mapping[str, Any]) -> tuple[str, str]:
    return line["quantity"], line["amount"]


def _late_positions(
    records: Sequence[StreamRecord],
    refused: set[tuple[str, str]],
    accounts: Mapping[str, Account],
    period: Period,
) -> dict[tuple[str, str], str]:
    """The refused records (by position) whose event is one of `accounts`' in `period`,
    with its account: the late events a re-rate of the period counts."""
    late = {}
    for record in records:
        position = (record.shard_id, record.sequence_number)
        if position not in refused:
            continue
        event = decode_record(record.data)
        account = accounts.get(event.account_id) if isinstance(event, UsageEvent) else None
        if (
            isinstance(event, UsageEvent)
            and account is not None
            and Period.containing(event.timestamp.at, account.zone) == period
        ):
            late[position] = account.id
    return late


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
