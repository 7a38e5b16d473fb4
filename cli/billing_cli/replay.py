"""`billing rejected replay`: quarantined records sent through the stream again, as they
were or corrected, each marked replayed once the stream took it (docs/quarantine.md).

The marker (`replayed/<id>.json`) is written after the stream accepted the record, never
before: a stop in between leaves the entry unmarked, and a later replay sends it again.
That second send is a duplicate of the first (the same event id, which the first claimed
if it was rated), so the event still counts once; if the first was rejected again, its new
quarantine entry is what to look at.

A late record that a correction of its invoiced period billed (`billed/<id>.json`, written
by `billing rerate --apply`) is skipped and named: its period's invoice charges it, and
the record refused as PERIOD_CLOSED claimed no event id, so nothing else would stop the
open period from charging it again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from billing.core.invoice import utc_text
from billing.settings import STACK_OUTPUTS
from billing_cli.deployment import Deployment
from billing_cli.producer import Placed
from billing_cli.quarantine import BadId, QuarantineBrowser, RejectedRow, parse_id
from billing_cli.sending import Sent, Waiting, outcome_json, put_tagged


class FixFileError(ValueError):
    """A fix file line that is not `{"id": "<shard>/<sequence>", "record": {...}}`."""


def read_fixes(path: Path) -> dict[str, bytes]:
    """The corrected record of each id, as it will go on the stream (compact JSON)."""
    fixes: dict[str, bytes] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise FixFileError(f"{path}: cannot be read ({error})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            fix = json.loads(line)
            rejection_id, record = fix["id"], fix["record"]
            parse_id(rejection_id)
        except (ValueError, KeyError, TypeError, BadId) as error:
            raise FixFileError(
                f'{path}:{number}: write {{"id": "<shard>/<sequence>", "record": {{...}}}} '
                f"({error})"
            ) from None
        if not isinstance(record, dict):
            raise FixFileError(f"{path}:{number}: `record` must be a JSON object (an event)")
        if rejection_id in fixes:
            raise FixFileError(f"{path}:{number}: {rejection_id} is corrected twice")
        fixes[rejection_id] = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
    return fixes


@dataclass
class ReplayResult:
    dry_run: bool
    selected: list[RejectedRow] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # id, why
    sent: Sent | None = None
    marked: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, requests: dict[str, int]) -> dict[str, Any]:
        sent = self.sent
        return {
            "dry_run": self.dry_run,
            "selected": [row.id for row in self.selected],
            "skipped": self.skipped,
            "replayed": self.marked,
            "refused": [
                {"id": tag, "reason": reason, "message": message}
                for tag, reason, message in (sent.refused if sent else [])
            ],
            "not_sent": sent.not_sent if sent else 0,
            **({"error": sent.error} if sent and sent.error else {}),
            **outcome_json(sent.outcomes if sent else None),
            "s3_requests": requests,
        }


def replay(
    deployment: Deployment,
    browser: QuarantineBrowser,
    *,
    reasons: Sequence[str] = (),
    account: str | None = None,
    fixes: dict[str, bytes] | None = None,
    dry_run: bool = False,
    now: datetime,
    waiting: Waiting | None = None,
) -> ReplayResult:
    """Send the chosen entries neither replayed nor billed yet, oldest first (one
    account's records keep their order), and mark each once the stream took it. With
    `fixes`, exactly the entries they name, each as corrected; else those the filters
    choose, as they were."""
    result = ReplayResult(dry_run)
    if fixes is not None:
        rows = []
        for rejection_id in fixes:
            row = browser.row(rejection_id)
            if row is None:
                result.skipped.append({"id": rejection_id, "why": "not in the quarantine"})
            else:
                rows.append(row)
    else:
        rows = browser.rows(browser.entries(reasons=reasons, account=account))
    for row in sorted(rows, key=lambda r: (r.entry.rejected_at, r.entry.shard_id, _seq(r))):
        if row.replayed is not None:
            result.skipped.append(
                {"id": row.id, "why": f"replayed at {row.replayed.get('replayed_at')}"}
            )
        elif row.billed_note is not None:
            result.skipped.append({"id": row.id, "why": row.billed_note})
        else:
            result.selected.append(row)
    if dry_run or not result.selected:
        return result
    items = [(row.id, fixes[row.id] if fixes else row.raw()) for row in result.selected]

    def mark(placed: list[Placed]) -> None:
        for record in placed:
            marker = {
                "replayed_at": utc_text(now),
                "as": f"{record.shard_id}/{record.sequence_number}",
                "corrected": fixes is not None,
                "stream": deployment.output(STACK_OUTPUTS.usage_stream_name),
            }
            browser.mark(str(record.tag), marker)
            result.marked.append({"id": record.tag, **marker})

    result.sent = put_tagged(deployment, items, waiting=waiting, on_placed=mark)
    return result


def _seq(row: RejectedRow) -> int:
    return int(row.entry.sequence_number)
