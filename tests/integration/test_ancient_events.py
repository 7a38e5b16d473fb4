"""Events at the far past edge of what the decoder takes, through the rating service and
the invoice run on moto (found by fuzzing, docs/fuzzing.md): an event of January of year 1
is refused (its period starts before year 1 in zones east of UTC), and the periods of
events of year 1 and year 500 are kept without breaking the due index the invoice run
reads."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent

from billing_cli.local.esm import MappingSettings, deliver
from functions.rate_usage import app as rate_usage
from tests.integration.conftest import Aws, invoicing_environment
from tests.integration.test_usage_api import issue_invoices
from tests.support.kinesis import shard

TIMESTAMPS = ["0001-01-02T00:00:00Z", "0001-02-02T00:00:00Z", "0500-06-15T00:00:00Z"]


def test_ancient_events_are_refused_or_kept_and_the_invoice_run_goes_on(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN acct-3 (Europe/Berlin, no start date) sent three events of the far past
    invoicing_environment(aws, monkeypatch)
    service = aws.service()
    records = [
        json.dumps(
            {
                "event_id": f"old-{n}",
                "account_id": "acct-3",
                "meter": "api_requests",
                "quantity": 5,
                "timestamp": timestamp,
            }
        ).encode()
        for n, timestamp in enumerate(TIMESTAMPS)
    ]

    # WHEN they are rated
    deliver(
        shard(records),
        lambda event: service.process(
            rate_usage.stream_records(KinesisStreamEvent(event))
        ).response(),
        MappingSettings(batch_size=10),
    )

    # THEN January of year 1 is quarantined, the two others are kept in their periods
    assert len(aws.quarantined()) == 1
    ledger = aws.ledger_store().load(["acct-3"], fresh=True)["acct-3"]
    assert sorted(ledger.usage) == ["0001-02", "0500-06"]
    # AND November's invoice run reads the due index (its hints of years 1 and 500
    # included) and issues the six example accounts' invoices
    assert len(issue_invoices()) == 6
