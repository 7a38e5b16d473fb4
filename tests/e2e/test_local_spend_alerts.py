"""Customers' spend alerts on the local runtime (`billing local`'s): usage put on its
stream, rated by its poller, the ledger's stream records delivered to spend_alerts through
Lambda by the alerts' poller, and the emails in moto's SES; every AWS call spend_alerts
makes is in its row of the permissions table."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from decimal import Decimal
from email.policy import default
from pathlib import Path

import boto3

from billing.core.catalog import load_accounts, load_catalog
from billing.core.customer_thresholds import CustomerThresholds
from billing.settings import CONFIG_TABLE
from billing.store.customer_thresholds import ThresholdsStore
from billing_cli.local.esm import MappingSettings
from billing_cli.local.runtime import REGION, local_aws
from functions.rate_usage import app as rate_usage
from stacks.permissions import FUNCTION_ACTIONS
from tests.e2e.test_calls_within_permissions import recording

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DECEMBER = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)


def test_a_customers_threshold_crossed_on_the_local_runtime_is_emailed_once() -> None:
    catalog = load_catalog(EXAMPLES / "catalog.yaml")
    with local_aws() as aws:
        # GIVEN the examples, acct-3's customer alerting at 10.00 EUR
        aws.load(catalog, load_accounts(EXAMPLES / "accounts.yaml", catalog), DECEMBER)
        rate_usage.service()._clock = lambda: DECEMBER  # the events are in the past
        thresholds = CustomerThresholds.of("EUR", None, [(Decimal("10.00"), None)])
        ThresholdsStore(aws.dynamodb, aws.tables[CONFIG_TABLE.env_var]).put(
            "acct-3", thresholds, DECEMBER
        )
        alerts = aws.alert_poller()
        alerts.poll()  # what loading wrote (due hints: filtered out)

        # WHEN a million API requests (15.00 EUR) arrive on the stream and are rated
        event = {
            "event_id": "local-big",
            "account_id": "acct-3",
            "meter": "api_requests",
            "quantity": 1_000_000,
            "timestamp": "2026-11-10T10:00:00Z",
        }
        boto3.client("kinesis", region_name=REGION).put_record(
            StreamName=aws.stream, Data=json.dumps(event).encode(), PartitionKey="acct-3"
        )
        (rater,) = aws.pollers(MappingSettings(batch_size=100))
        assert rater.poll() == 1

        # THEN the alerts' poller delivers the ledger's write, and one email goes
        with recording() as calls:
            assert alerts.poll() == 1
        assert alerts.poll() == 0
        (raw,) = aws.sent_emails()
        message = email.message_from_bytes(raw, policy=default)
        assert str(message["Subject"]) == "Your spend reached 10.00 EUR for 2026-11"
        assert "rechnungen@mueller.example" in str(message["To"])
        assert alerts.given_up == 0
        # AND spend_alerts called AWS only as its row in the table allows
        allowed = {c.action for made in FUNCTION_ACTIONS["spend_alerts"].values() for c in made}
        assert {"ses:SendEmail", "dynamodb:UpdateItem"} <= calls["spend_alerts"]
        assert calls["spend_alerts"] <= allowed, sorted(calls["spend_alerts"] - allowed)
