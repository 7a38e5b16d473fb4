"""Stream records as a shard holds them: increasing sequence numbers of Kinesis's length."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from billing.rating.rater import StreamRecord

# A real shard's sequence numbers are 56 digits; start near one so that comparing them as
# strings instead of numbers would be caught (…9 < …10 only as numbers).
FIRST_SEQUENCE = 49590338271490256608559692538361571095921575989136588890


def record_bytes(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def shard(
    payloads: Iterable[bytes | dict[str, Any]],
    shard_id: str = "shardId-000000000000",
    first: int = FIRST_SEQUENCE,
) -> list[StreamRecord]:
    records = []
    for offset, payload in enumerate(payloads):
        data = payload if isinstance(payload, bytes) else record_bytes(payload)
        account = payload.get("account_id", "") if isinstance(payload, dict) else ""
        records.append(
            StreamRecord(shard_id, str(first + offset * 7), data, partition_key=str(account))
        )
    return records
