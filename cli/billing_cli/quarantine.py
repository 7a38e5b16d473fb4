"""The quarantine as an operator's work queue: list, show and replay rejected records
(docs/quarantine.md).

A rejection's id is its position on the stream, `<shard>/<sequence>`: the name of its
document (`rejected/<id>.json`) without prefix and suffix, stable and unique. Listing reads
the index (billing.store.quarantine_index): list requests only, one per 1,000 entries per
reason listed; then one GET per row shown (its document) and one per row for its replay
marker (`replayed/<id>.json`, written by `billing rejected replay` once the stream took
the record again), and for a PERIOD_CLOSED row one more for its billed marker
(`billed/<id>.json`, written by `billing rerate --apply` once a correction of its invoiced
period billed it).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from botocore.exceptions import ClientError

from billing.core.events import Reason
from billing.core.invoice import utc_text
from billing.store.errors import translated
from billing.store.quarantine import (
    BILLED_PREFIX,
    QUARANTINE_PREFIX,
    REPLAYED_PREFIX,
    position_key,
)
from billing.store.quarantine_index import IndexEntry, index_time, reason_prefix, record_fields

_MISSING: Final = frozenset({"NoSuchKey", "404", "NotFound"})


class BadId(ValueError):
    """Not a rejection id (`<shard>/<sequence>`)."""


def parse_id(text: str) -> tuple[str, str]:
    """A rejection id's shard and sequence number."""
    parts = text.strip().split("/")
    if len(parts) != 2 or not all(parts) or not parts[1].isdigit():
        raise BadId(f"{text!r} is not a rejection id: write <shard>/<sequence>, as listed")
    return parts[0], parts[1]


@dataclass
class Requests:
    """The S3 requests a command made: what its filters cost."""

    list: int = 0
    get: int = 0
    put: int = 0

    def to_json(self) -> dict[str, int]:
        return {"list": self.list, "get": self.get, "put": self.put}


@dataclass(frozen=True)
class RejectedRow:
    entry: IndexEntry
    document: dict[str, Any]
    replayed: dict[str, Any] | None
    # The billed marker of a late record a correction of its invoiced period billed (only
    # a PERIOD_CLOSED record can have one): not to be resent.
    billed: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def billed_note(self) -> str | None:
        """Why the record is not to be resent, when a correction billed it."""
        if self.billed is None:
            return None
        names = self.billed.get("documents") or [self.billed.get("invoice_number")]
        documents = ", ".join(str(name) for name in names if name)
        return f"billed by the correction of {self.billed.get('period')}" + (
            f" ({documents})" if documents else ""
        )

    def raw(self) -> bytes:
        return document_raw(self.document)

    def to_json(self) -> dict[str, Any]:
        account_id, event_id = record_fields(self.raw())
        return {
            "id": self.id,
            "rejected_at": self.document.get("rejected_at", utc_text(self.entry.rejected_at)),
            "reason": self.document.get("reason", self.entry.reason),
            "account": account_id,
            "event_id": event_id,
            "message": self.document.get("message", ""),
            "replayed": self.replayed,
            "billed": self.billed,
        }


@dataclass
class QuarantineBrowser:
    client: Any
    bucket: str
    requests: Requests = field(default_factory=Requests)

    def entries(
        self,
        *,
        reasons: Sequence[str] = (),
        since: datetime | None = None,
        account: str | None = None,
    ) -> list[IndexEntry]:
        """The index entries of these reasons (default: all) from `since` on, of `account`
        if given, one per position (its latest), newest first: list requests only."""
        latest: dict[str, IndexEntry] = {}
        for reason in reasons or [str(r) for r in Reason]:
            for entry in self._listed(reason, since):
                if account is not None and entry.account_id != account:
                    continue
                known = latest.get(entry.id)
                if known is None or known.rejected_at < entry.rejected_at:
                    latest[entry.id] = entry
        return sorted(latest.values(), key=_newest_first, reverse=True)

    def _listed(self, reason: str, since: datetime | None) -> Iterable[IndexEntry]:
        prefix = reason_prefix(reason)
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if since is not None:
            # Keys sort by time within a reason: start at `since`, read nothing before it.
            request["StartAfter"] = prefix + index_time(since)
        with translated("list the quarantine's index"):
            for page in self.client.get_paginator("list_objects_v2").paginate(**request):
                self.requests.list += 1
                for item in page.get("Contents", []):
                    entry = IndexEntry.parse(item["Key"])
                    if entry is not None:
                        yield entry

    def rows(self, entries: Iterable[IndexEntry], *, limit: int | None = None) -> list[RejectedRow]:
        """The rows of these entries whose documents are kept (an entry may name a record
        whose rejection never landed: skipped), at most `limit`."""
        rows: list[RejectedRow] = []
        for entry in entries:
            if limit is not None and len(rows) >= limit:
                break
            document = self.document(entry.id)
            if document is not None:
                rows.append(self._row(entry, document))
        return rows

    def _row(self, entry: IndexEntry, document: dict[str, Any]) -> RejectedRow:
        """The row with its markers: a billed one is looked for only where a correction
        can have written it, a PERIOD_CLOSED record (one GET more for such a row)."""
        closed = document.get("reason", entry.reason) == str(Reason.PERIOD_CLOSED)
        billed = self.billed(entry.id) if closed else None
        return RejectedRow(entry, document, self.marker(entry.id), billed)

    def document(self, rejection_id: str) -> dict[str, Any] | None:
        """The quarantine document of this id, None when there is none."""
        return self._json(position_key(*parse_id(rejection_id)))

    def marker(self, rejection_id: str) -> dict[str, Any] | None:
        """When and as what the entry was replayed; None if it was not."""
        return self._json(f"{REPLAYED_PREFIX}{rejection_id}.json")

    def billed(self, rejection_id: str) -> dict[str, Any] | None:
        """Which correction billed the (late) record; None if none did."""
        return self._json(f"{BILLED_PREFIX}{rejection_id}.json")

    def mark_billed(self, rejection_id: str, marker: dict[str, Any]) -> None:
        """Mark a late record billed by an applied correction (the same key each time:
        an apply run again writes it again)."""
        self.requests.put += 1
        with translated("mark a rejected record billed"):
            self.client.put_object(
                Bucket=self.bucket,
                Key=f"{BILLED_PREFIX}{rejection_id}.json",
                Body=json.dumps(marker).encode(),
                ContentType="application/json",
            )

    def mark(self, rejection_id: str, marker: dict[str, Any]) -> None:
        self.requests.put += 1
        with translated("mark a rejected record replayed"):
            self.client.put_object(
                Bucket=self.bucket,
                Key=f"{REPLAYED_PREFIX}{rejection_id}.json",
                Body=json.dumps(marker).encode(),
                ContentType="application/json",
            )

    def row(self, rejection_id: str) -> RejectedRow | None:
        """One rejection by its id, from its document (no index needed)."""
        document = self.document(rejection_id)
        if document is None:
            return None
        shard_id, sequence_number = parse_id(rejection_id)
        rejected_at = datetime.fromisoformat(document["rejected_at"].replace("Z", "+00:00"))
        account_id, _ = record_fields(document_raw(document))
        entry = IndexEntry(document["reason"], rejected_at, account_id, shard_id, sequence_number)
        return self._row(entry, document)

    def index(self, row: RejectedRow) -> None:
        """Write the row's index entry (`billing rejected reindex`: documents kept before
        the index existed)."""
        self.requests.put += 1
        with translated("index a rejected record"):
            self.client.put_object(Bucket=self.bucket, Key=row.entry.key, Body=b"")

    def _json(self, key: str) -> dict[str, Any] | None:
        self.requests.get += 1
        with translated("read the quarantine"):
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in _MISSING:
                    return None
                raise
        document: dict[str, Any] = json.loads(body)
        return document

    def kept_ids(self) -> Iterable[str]:
        """Every kept document's id (for `billing rejected reindex`): one list request per
        1,000 documents."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=QUARANTINE_PREFIX
        )
        with translated("list the quarantine"):
            for page in pages:
                self.requests.list += 1
                for item in page.get("Contents", []):
                    key: str = item["Key"]
                    yield key.removeprefix(QUARANTINE_PREFIX).removesuffix(".json")


def _newest_first(entry: IndexEntry) -> tuple[datetime, str, int]:
    """Time, then stream order (sequence numbers compared as numbers): sorted reversed."""
    return (entry.rejected_at, entry.shard_id, int(entry.sequence_number))


def document_raw(document: dict[str, Any]) -> bytes:
    """The record's bytes as the stream carried them."""
    if "raw" in document:
        return str(document["raw"]).encode("utf-8")
    return base64.b64decode(document.get("raw_base64", ""))
