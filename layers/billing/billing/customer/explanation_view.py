"""Each line of a period's invoice (as it stands, or as issued from the same usage) with
what makes it: for a usage line, the meter's aggregation and the events it counts; for
every line, its price step by step (the invoice's own `details`). The usage API's
explanation, for the account's own usage (docs/usage-api.md).

It is made from the usage report (`billing.customer.usage_view`), so the amounts are the
invoice's to the cent. The events themselves (the first, the last, the biggest) and the
records left out are the operator's `billing explain`, which reads the raw archive: an
answer of the API reads only the account's ledger.
"""

from __future__ import annotations

from typing import Any

from billing.customer.usage_view import UsageReport


def explanation(report: UsageReport) -> dict[str, Any]:
    events = {id(c.line): c.events for meter in report.meters for c in meter.charges}
    aggregations = {meter.meter: meter.aggregation for meter in report.meters}
    lines = []
    for line in report.preview.lines:
        document = line.to_json()
        steps = document.pop("details", [])
        if line.kind == "usage":
            document["aggregation"] = aggregations.get(line.meter or "")
            document["events"] = events.get(id(line), 0)
        lines.append({**document, "steps": steps})
    preview = report.preview
    return {
        "account_id": report.account_id,
        "period": str(report.period),
        "status": report.status,
        "currency": preview.currency,
        "lines": lines,
        "subtotal": str(preview.subtotal),
        "tax": str(preview.tax),
        "total": str(preview.total),
        "unpriced": [view.to_json() for view in report.unpriced],
    }
