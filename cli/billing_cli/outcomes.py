"""What the service did with records a command put on the stream: rated, duplicate,
rejected (by reason), or still pending (docs/quarantine.md, *Outcomes*).

Every record of an account moves that account's ledger watermark for its shard (rated,
duplicate or rejected alike: billing.rating.rater), so a record at or below it is done. A
done record is rejected when its ledger still lists the rejection (not yet known kept) or
the quarantine index names its position and the document is there; otherwise the stream's
rater accepted it. Rated and duplicate are told apart by the event ids the accounts had
claimed before the send (read from their ledgers, as the rater reads them) and the order
of the records sent: the first accepted record of an id not claimed before is rated, any
other accepted one is a duplicate. A producer sending the same ids at the same time can
make that split wrong (the total of the two never is): docs/contract-notes.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from billing.rating.ledger import AccountLedger, id_digest
from billing.settings import STACK_OUTPUTS
from billing.store.capacity import CapacityMeter
from billing.store.errors import StoreError
from billing.store.id_chunks import IdChunks
from billing.store.quarantine import Quarantine
from billing_cli.deployment import Deployment
from billing_cli.quarantine import QuarantineBrowser

# How often a wait looks again; and how far before the send the index is listed from (the
# rater's clock and this machine's may differ).
POLL_SECONDS: Final = 1.0
CLOCK_SKEW: Final = timedelta(hours=1)


@dataclass(frozen=True)
class SentRecord:
    """A record on the stream: the caller's tag for it, its event and its position."""

    tag: object
    account_id: str
    event_id: str
    shard_id: str
    sequence_number: str

    @property
    def position(self) -> tuple[str, str]:
        return (self.shard_id, self.sequence_number)


@dataclass
class Outcomes:
    """Each sent record in exactly one place: rated, duplicate, rejected or pending."""

    rated: list[SentRecord] = field(default_factory=list)
    duplicates: list[SentRecord] = field(default_factory=list)
    rejected: dict[str, list[SentRecord]] = field(default_factory=dict)  # by reason
    pending: list[SentRecord] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {
            "rated": len(self.rated),
            "duplicates": len(self.duplicates),
            "rejected": {reason: len(found) for reason, found in sorted(self.rejected.items())},
            "pending": len(self.pending),
        }


Claimed = set[tuple[str, str]]  # (account id, event id)


def claimed_before(
    deployment: Deployment, events: Iterable[tuple[str, str]], now: datetime
) -> Claimed:
    """Which of these (account, event id) pairs the accounts' ledgers count as claimed
    now: what the rater will find a duplicate. Read only: a rater's `seen` also writes a
    keyed account's pending claims, which this marks as written (their digests count
    anyway). StoreError when a ledger or an id chunk cannot be read."""
    wanted: dict[str, set[str]] = {}
    for account_id, event_id in events:
        wanted.setdefault(account_id, set()).add(event_id)
    ids = IdChunks(
        deployment.client("dynamodb"),
        deployment.output(STACK_OUTPUTS.ledger_table),
        CapacityMeter(),
    )
    claimed: Claimed = set()
    for account_id, ledger in deployment.ledgers().load(sorted(wanted), fresh=True).items():
        ids.flushed.update(ref.key for ref in ledger.chunk_refs if ref.pending)
        digests = {id_digest(event_id): event_id for event_id in wanted[account_id]}
        seen = ids.seen(ledger, now, list(digests))
        claimed |= {(account_id, event_id) for d, event_id in digests.items() if d in seen}
    return claimed


class OutcomeTracker:
    """Follows records sent from `since` (the deployment's clock at the send) until each is
    done or the wait is over. `sleep` and `clock` are the waiting: tests pass ones that run
    the local runtime's pollers instead of sleeping."""

    def __init__(
        self,
        deployment: Deployment,
        since: datetime,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ledgers = deployment.ledgers()
        bucket = deployment.output(STACK_OUTPUTS.quarantine_bucket)
        self._quarantine = Quarantine(deployment.client("s3"), bucket)
        self._browser = QuarantineBrowser(deployment.client("s3"), bucket)
        self._since = since - CLOCK_SKEW
        self._sleep = sleep
        self._clock = clock

    def follow(self, sent: Sequence[SentRecord], claimed: Claimed, wait_seconds: float) -> Outcomes:
        """Look until every record is done or `wait_seconds` have passed (0: look once)."""
        deadline = self._clock() + wait_seconds
        rejected: dict[tuple[str, str], str] = {}
        done: set[tuple[str, str]] = set()
        while True:
            left = [record for record in sent if record.position not in done]
            self._look(left, done, rejected)
            if len(done) == len(sent) or self._clock() >= deadline:
                break
            self._sleep(POLL_SECONDS)
        return sorted_out(sent, done, rejected, claimed)

    def _look(
        self,
        records: Sequence[SentRecord],
        done: set[tuple[str, str]],
        rejected: dict[tuple[str, str], str],
    ) -> None:
        """Mark the records now done, and the reason of each of them rejected."""
        if not records:
            return
        try:
            ledgers = self._ledgers.load(sorted({r.account_id for r in records}), fresh=True)
        except StoreError:
            return  # looked at again on the next round, or left pending
        finished = [r for r in records if _past_watermark(ledgers[r.account_id], r)]
        if not finished:
            return
        unsettled = {
            (item.shard_id, item.sequence_number): item.reason
            for ledger in ledgers.values()
            for item in ledger.rejections
        }
        # Listed after the ledgers were read: a rejection a landed ledger decided was indexed
        # before that ledger was written.
        try:
            indexed = {
                (entry.shard_id, entry.sequence_number): entry.reason
                for entry in self._browser.entries(since=self._since)
            }
        except StoreError:
            return  # looked at again on the next round, or left pending
        for record in finished:
            reason = unsettled.get(record.position)
            # An index entry alone may name a rejection that never landed: its document
            # says it is kept.
            if (
                reason is None
                and record.position in indexed
                and self._quarantine.holds(*record.position)
            ):
                reason = indexed[record.position]
            if reason is not None:
                rejected[record.position] = reason
            done.add(record.position)


def _past_watermark(ledger: AccountLedger, record: SentRecord) -> bool:
    return ledger.replayed(record.shard_id, int(record.sequence_number))


def sorted_out(
    sent: Sequence[SentRecord],
    done: set[tuple[str, str]],
    rejected: dict[tuple[str, str], str],
    claimed: Claimed,
) -> Outcomes:
    """Each record in its one place, in the order sent: a record accepted (not rejected) is
    rated when it is the first accepted one of its id not claimed before, else a duplicate."""
    outcomes = Outcomes()
    claims = set(claimed)
    for record in sent:
        if record.position not in done:
            outcomes.pending.append(record)
        elif record.position in rejected:
            outcomes.rejected.setdefault(rejected[record.position], []).append(record)
        elif (record.account_id, record.event_id) in claims:
            outcomes.duplicates.append(record)
        else:
            claims.add((record.account_id, record.event_id))
            outcomes.rated.append(record)
    return outcomes
