"""A re-rate applied to an open period: the period's aggregates in each account's ledger
replaced by those its archived records give under the stored catalog, while the rater
keeps rating.

Why no event is counted twice or lost across the switch:
- **The cut.** The ledger read at version v has handled, on each shard, the account's
  records up to its watermark there (every record of an account moves it, rejected ones
  included). The replay rates exactly the account's archived records at or below those
  watermarks, from the start of the lookback: the records the ledger's aggregates count,
  rated again.
- **The archive must hold them.** On every shard where the archive holds records of the
  account, its record at the ledger's watermark must be there too (Firehose writes a
  shard in order, at least once, within its buffer time); when it is not there yet,
  nothing is written and the account is reported `waiting`: apply again after a few
  minutes. A shard on which the archive holds none of the account's records is one the
  account left before the lookback (a stream resharded since). The one case this cannot
  tell apart: an account whose very first records on a new shard are still in Firehose's
  buffer (the minutes after a resharding); do not apply then.
- **The switch.** The new ledger (version v+1: the same watermarks, the same claimed ids,
  the period's usage replaced) is written on condition that the ledger is still at
  version v, as every rater write is. A rater batch that lands in between makes the write
  fail; the apply reads the ledger again and repeats with the new cut. Once it lands, the
  rater's next batch reads v+1 and adds the records above the watermarks to the replaced
  aggregates.
- **Claims are kept.** The ledger's claimed event ids (and unique values) stay as they
  are, so a resend is still a duplicate. Under a catalog that now refuses events the
  rater took (a meter removed), those events leave the aggregates but keep their claims.

Only a period whose usage the ledger item holds itself is replaced; one kept in an item
of its own (`cold`, an account with more open periods than the item holds) is reported
`refused`, as is an invoiced period (a correction of one is a credit note).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, Protocol

from billing.core.catalog import Account
from billing.core.periods import Period
from billing.core.usage import MeterUsage
from billing.corrections.replay import replay
from billing.corrections.sources import CorrectionSources, RatingConfig
from billing.rating.ledger import AccountLedger
from billing.rating.records import LedgerWrite, StreamRecord
from billing.store.errors import VersionConflict

# Rater batches landing between the apply's read and its write, at most, per account.
ATTEMPTS: Final = 10

Outcome = Literal["replaced", "unchanged", "waiting", "refused"]


class LedgerWriter(Protocol):
    def load(self, account_ids: Sequence[str], *, fresh: bool = False) -> Any: ...
    def save(self, write: LedgerWrite) -> None: ...


@dataclass(frozen=True, slots=True)
class Applied:
    account_id: str
    outcome: Outcome
    reason: str = ""

    def to_json(self) -> dict[str, str]:
        document = {"account_id": self.account_id, "outcome": self.outcome}
        if self.reason:
            document["reason"] = self.reason
        return document


@dataclass
class OpenPeriodApply:
    sources: CorrectionSources
    ledgers: LedgerWriter

    def apply(self, period: Period, accounts: Sequence[Account], now: datetime) -> list[Applied]:
        return [self._account(account, period, now) for account in accounts]

    def _account(self, account: Account, period: Period, now: datetime) -> Applied:
        for _ in range(ATTEMPTS):
            ledger: AccountLedger = self.ledgers.load([account.id], fresh=True)[account.id]
            refusal = _refusal(ledger, str(period))
            if refusal:
                return Applied(account.id, "refused", refusal)
            records, refused = self.sources.account_records(account, period, now)
            cut = [r for r in records if r.sequence <= ledger.watermarks.get(r.shard_id, -1)]
            behind = _not_archived(cut, ledger.watermarks)
            if behind:
                return Applied(
                    account.id,
                    "waiting",
                    f"the archive does not hold the rater's last record on {behind} yet "
                    "(Firehose delivers within minutes): apply again later",
                )
            catalog = self.sources.config.catalog()
            replayed = replay(cut, RatingConfig(self.sources.config, catalog), refused)
            usage = replayed.usage(account.id, str(period))
            held = dict(ledger.usage.get(str(period), {}))
            if usage == held:
                return Applied(account.id, "unchanged")
            moved = _distinct_values_moved(held, usage)
            if moved:
                return Applied(
                    account.id,
                    "refused",
                    f"{moved} counts distinct values, which are claimed per filtered charge: "
                    "its aggregates cannot be replaced without claiming them again",
                )
            after = ledger.bumped(usage={**ledger.usage, str(period): usage})
            try:
                self.ledgers.save(LedgerWrite(ledger, after))
            except VersionConflict:
                continue  # a rater batch landed in between: read again, cut again
            return Applied(account.id, "replaced")
        return Applied(account.id, "refused", f"the rater wrote first {ATTEMPTS} times")


def _distinct_values_moved(
    held: Mapping[str, MeterUsage], replayed: Mapping[str, MeterUsage]
) -> str:
    """A unique_count meter whose usage the apply would change, or ''. Its values are
    claimed per share (billing.rating.unique_values): a share the apply fills has no
    claims, so the rater would count a known value in it again."""
    for name in sorted(held.keys() | replayed.keys()):
        before, after = held.get(name), replayed.get(name)
        either = after or before
        if either is not None and either.aggregation == "unique_count" and before != after:
            return name
    return ""


def _refusal(ledger: AccountLedger, period: str) -> str:
    if period in ledger.closed:
        return "the period is invoiced: a correction of it is a credit note or an adjustment"
    if not ledger.holds_inline(period) or period in ledger.log:
        return "the period's usage is kept in an item of its own, which apply does not replace"
    return ""


def _not_archived(records: Sequence[StreamRecord], watermarks: Mapping[str, int]) -> str:
    """A shard whose watermark record is not among `records`, or ''."""
    held = {(r.shard_id, r.sequence) for r in records}
    shards = {r.shard_id for r in records}
    for shard, sequence in sorted(watermarks.items()):
        if shard in shards and (shard, sequence) not in held:
            return shard
    return ""
