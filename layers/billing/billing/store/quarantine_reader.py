"""The quarantine read back for a re-rate: the rater's verdicts that depended on when a
record came or on the configuration then (billing.store.quarantine writes them,
billing.store.quarantine_index names them), so that a replay takes them as they were
instead of judging again by a clock it does not have or by today's accounts and catalog:
PERIOD_CLOSED (the period was invoiced), FUTURE_TIMESTAMP (the event was ahead of the
rater's clock), UNKNOWN_ACCOUNT, UNKNOWN_METER and NOT_SUBSCRIBED (an account, meter or
subscription added since would otherwise count a record the rater refused and nobody
resent: its event id claimed nowhere, a resend would count it twice). A refused record is
counted only where it is resent (`billing rejected replay`): and which refused records an
operator has resent, rated under another position since, never to count twice. The checks
that depend on the record alone (size, JSON, schema) a replay makes again alike."""

from __future__ import annotations

from collections.abc import Container, Iterable
from typing import Any, Final

from botocore.exceptions import ClientError

from billing.core.events import Reason
from billing.store.errors import translated
from billing.store.quarantine import REPLAYED_PREFIX, position_key
from billing.store.quarantine_index import IndexEntry, reason_prefix

Position = tuple[str, str]  # (shard id, sequence number)
# The verdicts a replay cannot make again: they depended on the moment a record was rated,
# or on the accounts and catalog as they were then.
KEPT_VERDICTS: Final = (
    Reason.UNKNOWN_ACCOUNT,
    Reason.UNKNOWN_METER,
    Reason.FUTURE_TIMESTAMP,
    Reason.NOT_SUBSCRIBED,
    Reason.PERIOD_CLOSED,
)
_MISSING: Final = frozenset({"404", "NoSuchKey", "NotFound"})


class QuarantineReader:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def rater_refusals(self, among: Container[Position]) -> dict[Position, Reason]:
        """The positions among `among` of the records the rater refused for one of the
        KEPT_VERDICTS, with the reason: each reason's index entries listed whole (one
        request per 1,000), each
        kept only when its document exists (one HEAD: an entry is written before its
        document, which a write that did not land never wrote). The listing is not cut by
        time: an entry's time is the rater's clock (a test clock, locally), not the
        record's arrival. Rejections kept before the index existed count once `billing
        rejected reindex` has run."""
        refused: dict[Position, Reason] = {}
        for reason in KEPT_VERDICTS:
            with translated("list the quarantine's index"):
                pages = self._client.get_paginator("list_objects_v2").paginate(
                    Bucket=self._bucket, Prefix=reason_prefix(reason)
                )
                entries = [
                    IndexEntry.parse(item["Key"])
                    for page in pages
                    for item in page.get("Contents", [])
                ]
            for entry in entries:
                if entry is not None and (entry.shard_id, entry.sequence_number) in among:
                    refused[(entry.shard_id, entry.sequence_number)] = reason
        return {
            position: why
            for position, why in refused.items()
            if self._exists(position_key(*position))
        }

    def resent(self, positions: Iterable[Position]) -> set[Position]:
        """The refused records among `positions` that an operator resent (one HEAD each)."""
        return {
            position
            for position in positions
            if self._exists(f"{REPLAYED_PREFIX}{position[0]}/{position[1]}.json")
        }

    def _exists(self, key: str) -> bool:
        """Whether the object exists; StoreError when S3 cannot say (a re-rate must not
        take a refused record for a rated one)."""
        try:
            self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                return False
            with translated("look up a quarantined record"):
                raise
        return True
