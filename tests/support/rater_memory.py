"""The production rater (`billing.rating.rater.rate_batch`) driven invocation by invocation
the way the rating service drives it, over ledgers, id chunks and a quarantine kept in
memory, so that property tests can deliver a shard any way Lambda might (any batch
boundaries, invocations that die with only some accounts' writes landed, whole ranges
delivered again) in milliseconds.

What the service adds around `rate_batch` and this keeps: each account's ledger is read
fresh, with the ids it has seen (inline and in its live chunks); a write lands whole or not
at all, over the version it read; a landed write's rejections are then kept in the
quarantine (and so settled for the next write); a record of an account whose write did not
land, or that was left over (deferred), is delivered again.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from hypothesis import strategies as st

from billing.core.catalog import Account, Catalog
from billing.core.events import Rejection, decode_record
from billing.rating.ledger import AccountLedger, IdChunk, epoch_day
from billing.rating.rater import LedgerWrite, Outcome, StreamRecord, rate_batch


@dataclass
class MemoryRater:
    catalog: Catalog
    accounts: Mapping[str, Account]
    now: datetime
    ledgers: dict[str, AccountLedger] = field(default_factory=dict)
    chunks: dict[bytes, IdChunk] = field(default_factory=dict)
    kept: set[tuple[str, str]] = field(default_factory=set)  # the quarantine's records
    # Each record's outcome as decided by a landed write ("rated", "duplicate" or the
    # rejection's reason), by sequence number.
    final: dict[str, str] = field(default_factory=dict)
    applied_twice: list[str] = field(default_factory=list)
    invocations: int = 0

    def deliver(
        self, records: Sequence[StreamRecord], lands: Callable[[str], bool] = lambda _: True
    ) -> list[StreamRecord]:
        """One invocation on `records`, whose ledger write for account `a` lands only if
        `lands(a)`. Returns the records that must be delivered again, in stream order."""
        self.invocations += 1
        decoded = [(record, decode_record(record.data)) for record in records]
        ids = {event.account_id for _, event in decoded if not isinstance(event, Rejection)}
        ledgers = {a: self.ledgers.get(a) or AccountLedger(a) for a in sorted(ids)}
        result = rate_batch(
            decoded,
            catalog=self.catalog,
            accounts=self.accounts,
            ledgers=ledgers,
            seen={a: self._seen(ledger) for a, ledger in ledgers.items()},
            now=self.now,
            chunks=self.chunks,
            settled=lambda rejected: (rejected.shard_id, rejected.sequence_number) in self.kept,
        )
        landed = {a for a, write in result.writes.items() if lands(a) and self._save(write)}
        again: list[StreamRecord] = []
        for item in result.results:
            record = item.record
            if item.account_id is None:  # rejected by its bytes alone, kept at once
                assert item.rejection is not None
                self.kept.add((record.shard_id, record.sequence_number))
                self.final[record.sequence_number] = str(item.rejection.reason)
            elif item.outcome is Outcome.REPLAYED:  # decided by a write that landed before
                continue
            elif item.outcome is Outcome.DEFERRED or item.account_id not in landed:
                again.append(record)
            else:
                self._decided(record, item.outcome, item.rejection)
        return again

    def _seen(self, ledger: AccountLedger) -> Container[bytes]:
        assert not ledger.keyed, "keyed accounts need claim items: not kept here"
        today = epoch_day(self.now)
        seen = ledger.recent_digests(today)
        for ref in ledger.live_chunks(today):
            seen.update(self.chunks[ref.key].digests())
        return seen

    def _save(self, write: LedgerWrite) -> bool:
        """Land a ledger write: its chunk first, then the ledger over the version it read,
        then its rejections in the quarantine."""
        account = write.after.account_id
        stored = self.ledgers.get(account) or AccountLedger(account)
        assert stored.version == write.before.version, "no other writer here"
        assert not write.after.log, "periods kept outside the ledger are not kept here"
        if write.chunk is not None:
            self.chunks[write.chunk.key] = write.chunk
        self.ledgers[account] = write.after
        self.kept |= {(record.shard_id, record.sequence_number) for record, _ in write.rejected}
        return True

    def _decided(self, record: StreamRecord, outcome: Outcome, why: Rejection | None) -> None:
        sequence = record.sequence_number
        if sequence in self.final:
            self.applied_twice.append(sequence)
        self.final[sequence] = str(why.reason) if why is not None else str(outcome)


def deliver_any_way(
    rater: MemoryRater, records: Sequence[StreamRecord], data: st.DataObject
) -> None:
    """Deliver `records` the way Lambda might, as `data` draws it: any batch boundaries,
    writes that do not land (their records delivered again), and landed ranges delivered
    again (their records then replays), until every record is done."""
    pending: list[StreamRecord] = list(records)
    faults = 2 * len(records)  # then every write lands, so that delivery ends
    while pending:
        size = data.draw(st.integers(1, len(pending)), label="batch size")
        batch = pending[:size]
        failing: bool = faults > 0 and data.draw(st.booleans(), label="writes fail")

        def lands(_account: str, failing: bool = failing) -> bool:
            return not failing

        again = rater.deliver(batch, lands)
        if faults > 0 and data.draw(st.booleans(), label="redeliver"):
            again = list(batch)
        faults -= 1
        pending = sorted(again + pending[size:], key=lambda r: r.sequence)
        pending = list({r.sequence_number: r for r in pending}.values())
