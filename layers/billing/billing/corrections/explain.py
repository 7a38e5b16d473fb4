"""Where every amount of an invoice (or of the preview of an open period) came from: for
each line, the events behind it (how many, the first, the last, the biggest), the
aggregate, the price step by step, and the records of the period that were left out (the
duplicates and the rejections, with why).

The events come from a replay of the raw archive (`billing.corrections.sources`) with the
catalog in force, so they are the events the rater counted: records it refused as
PERIOD_CLOSED stay refused (they are listed as left out: "arrived after the invoice").
A line takes a rated event of its account and period when the event's meter is the line's,
its dimensions pass the line's filters, and (on an invoice of several phases) its local
date is in the line's phase. A rated event that no usage line takes is `unpriced`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final

from billing.core.catalog import Account
from billing.core.events import UsageEvent
from billing.core.money import plain_quantity
from billing.core.periods import Period
from billing.corrections.replay import Replayed
from billing.corrections.sources import CorrectionSources
from billing.rating.records import Outcome

# Left-out records shown by example, per line: enough to find them (`billing rejected`).
EXAMPLES_MAX: Final = 5


@dataclass
class LeftOut:
    """The period's records a line (or the account) did not count, and why."""

    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, str]] = field(default_factory=list)

    def add(self, replayed: Replayed) -> None:
        event = replayed.event
        rejection = replayed.rejection
        if replayed.outcome == Outcome.DUPLICATE:
            self.duplicates += 1
            why = "duplicate: its event_id was counted before"
        elif rejection is not None:
            self.rejected[str(rejection.reason)] += 1
            why = f"{rejection.reason}: {rejection.message}"
        else:
            return
        if len(self.examples) < EXAMPLES_MAX and event is not None:
            self.examples.append({**_event_json(event), "why": why})

    def to_json(self) -> dict[str, Any]:
        return {
            "duplicates": self.duplicates,
            "rejected": dict(sorted(self.rejected.items())),
            "examples": self.examples,
        }


@dataclass
class LineEvents:
    """The rated events behind one usage line."""

    line: Mapping[str, Any]
    events: list[UsageEvent] = field(default_factory=list)
    left_out: LeftOut = field(default_factory=LeftOut)

    def takes(self, event: UsageEvent, local_day: date) -> bool:
        line = self.line
        if line["kind"] != "usage" or line.get("meter") != event.meter:
            return False
        filters: Mapping[str, list[str]] = line.get("filters") or {}
        if any(event.dimensions.get(key) not in values for key, values in filters.items()):
            return False
        if "from" in line:
            return date.fromisoformat(line["from"]) <= local_day < date.fromisoformat(line["to"])
        return True

    def to_json(self, aggregation: str | None) -> dict[str, Any]:
        line = dict(self.line)
        steps = line.pop("details", [])
        explained: dict[str, Any] = {**line, "steps": steps}
        if line["kind"] == "usage":
            explained["aggregation"] = aggregation
            explained["events"] = _events_json(self.events)
            explained["left_out"] = self.left_out.to_json()
        return explained


@dataclass
class Explanation:
    account_id: str
    period: str
    invoice_number: str | None
    currency: str
    document: Mapping[str, Any]
    lines: list[LineEvents]
    aggregations: Mapping[str, str]
    unpriced: dict[str, list[UsageEvent]] = field(default_factory=dict)
    left_out: LeftOut = field(default_factory=LeftOut)  # of no line: an unknown meter, say

    def to_json(self, meter: str | None = None) -> dict[str, Any]:
        lines = [
            line.to_json(self.aggregations.get(line.line.get("meter", "")))
            for line in self.lines
            if meter is None or line.line.get("meter") == meter
        ]
        return {
            "account_id": self.account_id,
            "period": self.period,
            "invoice_number": self.invoice_number,
            "currency": self.currency,
            **{name: self.document[name] for name in ("subtotal", "tax", "total")},
            "lines": lines,
            "unpriced": {
                name: _events_json(events)
                for name, events in sorted(self.unpriced.items())
                if meter is None or name == meter
            },
            "left_out": self.left_out.to_json(),
        }


@dataclass
class Explain:
    sources: CorrectionSources

    def account(
        self, account_id: str, period: Period, *, now: datetime | None = None
    ) -> Explanation:
        """LookupError for an account that is not known."""
        sources = self.sources
        (account,) = sources.accounts(period, account_id)
        catalog = sources.config.catalog()
        stored = sources.stored_invoice(account, period)
        replayed = sources.replayed(
            period,
            [account],
            catalog,
            count_late=False,
            now=now or datetime.now(UTC),
            with_events=True,
        )
        document = stored.document
        explanation = Explanation(
            account_id=account.id,
            period=str(period),
            invoice_number=document["invoice_number"] if stored.issued else None,
            currency=document["currency"],
            document=document,
            lines=[LineEvents(line) for line in document["lines"]],
            aggregations={meter.name: meter.aggregation for meter in catalog.meters},
        )
        for record in _of_period(replayed.replay.records, account, period):
            _place(explanation, record, account)
        return explanation


def _of_period(
    records: Iterable[Replayed], account: Account, period: Period
) -> Iterable[tuple[Replayed, date]]:
    """The account's records whose event falls in `period`, with its local date."""
    for record in records:
        event = record.event
        if event is None or event.account_id != account.id:
            continue
        local = event.timestamp.at.astimezone(account.zone)
        if Period.containing(event.timestamp.at, account.zone) == period:
            yield record, local.date()


def _place(explanation: Explanation, placed: tuple[Replayed, date], account: Account) -> None:
    record, day = placed
    event = record.event
    assert event is not None  # _of_period yields only decoded events
    lines = [line for line in explanation.lines if line.takes(event, day)]
    if record.outcome == Outcome.RATED:
        for line in lines:
            line.events.append(event)
        if not lines:
            explanation.unpriced.setdefault(event.meter, []).append(event)
        return
    for line in lines:
        line.left_out.add(record)
    if not lines:
        explanation.left_out.add(record)


def _events_json(events: Sequence[UsageEvent]) -> dict[str, Any]:
    if not events:
        return {"count": 0}
    by_time = sorted(events, key=lambda e: (e.timestamp.at, e.timestamp.nanos))
    return {
        "count": len(events),
        "first": _event_json(by_time[0]),
        "last": _event_json(by_time[-1]),
        "biggest": _event_json(max(events, key=lambda e: e.quantity)),
    }


def _event_json(event: UsageEvent) -> dict[str, str]:
    return {
        "event_id": event.event_id,
        "timestamp": _timestamp_text(event),
        "quantity": plain_quantity(event.quantity),
    }


def _timestamp_text(event: UsageEvent) -> str:
    at = event.timestamp.at.astimezone(UTC)
    text = at.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{at.microsecond:06d}{event.timestamp.nanos:03d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"
