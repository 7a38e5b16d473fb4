"""What a period's aggregates and invoices would be if its usage were rated again from the
raw archive, with the current catalog or another, against what is stored (a dry run).

The period is replayed from the archive (`billing.corrections.sources`) with its late
events counted: usage the rater refused as PERIOD_CLOSED belongs in a correction, and is
reported apart.

The stored side is the invoice as issued (its JSON in S3) or, for an open period, the
invoice the ledger's usage would give now under the current catalog; the re-rated side
is the invoice the replayed usage gives under the chosen catalog, with the same number
and issue time. Lines are matched by what they price (kind, meter, filters, phase,
discount) so a catalog that adds or drops a charge shows as a line added or dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from billing.core.catalog import Catalog
from billing.core.credit_notes import Credited, IssuedInvoice, remaining_total
from billing.core.periods import Period
from billing.corrections.sources import CorrectionSources, Position, instant, invoice_json
from billing.store.invoice_records import InvoiceRecord

_PRICED_FIELDS: Final = ("subtotal", "tax", "total")


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
    # The invoice's total after its credit notes and adjustments, when it has some: what
    # a correction now starts from.
    stands_at: str | None = None
    # The credit notes and adjustments it stands after, as issued: where `--apply` asks the
    # correction to start (refused if another lands first).
    after: tuple[str, ...] = ()
    # The whole re-rated invoice document (what `--apply` asks an invoiced period's
    # correction to): not part of the report.
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # Where the late events counted are on the stream (shard, sequence number), in stream
    # order: what an applied correction bills, for `--apply` to mark billed in the
    # quarantine. Not part of the report.
    late_positions: tuple[Position, ...] = field(default=(), compare=False, repr=False)

    @property
    def difference(self) -> Decimal:
        """Re-rated total minus where the invoice stands (its total, less its credit notes
        and plus its adjustments): above 0 an undercharge, below 0 an overcharge."""
        return Decimal(self.rerated["total"]) - Decimal(self.stands_at or self.stored["total"])

    @property
    def changed(self) -> bool:
        standing = self.stands_at is not None and self.stands_at != self.rerated["total"]
        return bool(self.lines) or dict(self.stored) != dict(self.rerated) or standing

    def to_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "period": self.period,
            "invoice_number": self.invoice_number,
            "currency": self.currency,
            "stored": dict(self.stored),
            "rerated": dict(self.rerated),
            **({"stands_at": self.stands_at} if self.stands_at is not None else {}),
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


@dataclass
class Rerate:
    sources: CorrectionSources

    def dry_run(
        self,
        period: Period,
        *,
        account_id: str | None = None,
        catalog: Catalog | None = None,
        catalog_name: str = "current",
        now: datetime | None = None,
    ) -> RerateReport:
        sources = self.sources
        accounts = sources.accounts(period, account_id)
        chosen = catalog or sources.config.catalog()
        replayed = sources.replayed(
            period, accounts, chosen, count_late=True, now=now or datetime.now(UTC)
        )
        late = replayed.late_events()
        late_rated = replayed.late_rated()
        report = RerateReport(str(period), catalog_name, records_read=replayed.records_read)
        for account in accounts:
            stored = sources.stored_invoice(account, period)
            document = stored.document
            rerated = invoice_json(
                account,
                chosen,
                period,
                replayed.replay.usage(account.id, str(period)),
                document["invoice_number"],
                instant(document["issued_at"]),
            )
            report.accounts.append(
                AccountRerate(
                    account_id=account.id,
                    period=str(period),
                    invoice_number=document["invoice_number"] if stored.issued else None,
                    currency=document["currency"],
                    stored={name: document[name] for name in _PRICED_FIELDS},
                    rerated={name: rerated[name] for name in _PRICED_FIELDS},
                    lines=_changed_lines(document["lines"], rerated["lines"]),
                    late_events=late[account.id],
                    stands_at=_standing(document, stored.record),
                    after=_stands_after(stored.record),
                    document=rerated,
                    late_positions=tuple(p for p, of in late_rated.items() if of == account.id),
                )
            )
        return report


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


def _standing(document: Mapping[str, Any], record: InvoiceRecord | None) -> str | None:
    """The issued invoice's total after its credit notes and adjustments; None when it has
    none (or is not issued)."""
    if record is None or not record.credited:
        return None
    issued = IssuedInvoice.from_document(document)
    return str(remaining_total(issued, Credited.from_text(record.credited)))


def _stands_after(record: InvoiceRecord | None) -> tuple[str, ...]:
    """The numbers of the documents issued against the invoice so far, in their order."""
    if record is None:
        return ()
    return Credited.from_text(record.credited).notes
