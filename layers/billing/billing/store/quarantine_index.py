"""The quarantine's index: one empty object per rejection, named so that a listing answers.

A quarantined record's document is `rejected/<shard>/<sequence>.json`: found at once by its
position, but a listing of `rejected/` says nothing about reason, time or account. So the
rater also writes, before each document, an empty object whose key carries them:

    index/<REASON>/<rejected_at: YYYYMMDDTHHMMSS.ffffffZ>/<account or ~>/<shard>/<sequence>

Listing `index/<REASON>/` lists one reason's rejections in time order, and `StartAfter`
starts the listing at a time: `--reason` and `--since` cost list requests only (one per
1,000 entries in range), and an account is read from the key, not from the document.

An entry is written before its document (and a rejection decided in a ledger write, when it
is staged), so an entry may name a position whose document was never kept (a ledger write
that did not land, its record rated on a later delivery) or name it twice (a batch rated
again at a later time): readers take the document as the truth and a position once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

INDEX_PREFIX: Final = "index/"
NO_ACCOUNT: Final = "~"  # not an account id character: a record tied to no account
_TIME_FORMAT: Final = "%Y%m%dT%H%M%S.%fZ"
_ACCOUNT_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")


def index_time(moment: datetime) -> str:
    """An aware instant as the index writes it: UTC, fixed width, so keys sort by time."""
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def index_key(
    reason: str,
    rejected_at: datetime,
    account_id: str | None,
    shard_id: str,
    sequence_number: str,
) -> str:
    account = account_id or NO_ACCOUNT
    return (
        f"{INDEX_PREFIX}{reason}/{index_time(rejected_at)}/{account}/{shard_id}/{sequence_number}"
    )


def reason_prefix(reason: str) -> str:
    return f"{INDEX_PREFIX}{reason}/"


@dataclass(frozen=True, slots=True)
class IndexEntry:
    reason: str
    rejected_at: datetime
    account_id: str | None
    shard_id: str
    sequence_number: str

    @property
    def id(self) -> str:
        """The rejection's id: its position on the stream, `<shard>/<sequence>`."""
        return f"{self.shard_id}/{self.sequence_number}"

    @property
    def key(self) -> str:
        return index_key(
            self.reason, self.rejected_at, self.account_id, self.shard_id, self.sequence_number
        )

    @classmethod
    def parse(cls, key: str) -> IndexEntry | None:
        """The entry a key names; None for a key that is not an index entry."""
        parts = key.removeprefix(INDEX_PREFIX).split("/")
        if not key.startswith(INDEX_PREFIX) or len(parts) != 5 or not all(parts):
            return None
        if not parts[4].isdigit():  # a sequence number is decimal digits
            return None
        reason, moment, account, shard_id, sequence_number = parts
        try:
            rejected_at = datetime.strptime(moment, _TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            return None
        return cls(
            reason,
            rejected_at,
            None if account == NO_ACCOUNT else account,
            shard_id,
            sequence_number,
        )


def record_fields(data: bytes) -> tuple[str | None, str | None]:
    """The account id and event id a raw record names, when it is a JSON object naming them
    (a usage event's `account_id` and `event_id`, a CloudEvent's `subject` and `id`); an
    account id only when it is one (it goes into keys)."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(document, dict):
        return None, None
    account = document.get("account_id", document.get("subject"))
    event_id = document.get("event_id", document.get("id"))
    account_id = account if isinstance(account, str) and _ACCOUNT_ID.fullmatch(account) else None
    return account_id, event_id if isinstance(event_id, str) else None
