"""moto-backed AWS for the integration tests: the project's tables and quarantine bucket,
provisioned from the same declarations the stack uses, with the example catalog and
accounts pushed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent
from moto import mock_aws

from billing.core.catalog import Accounts, Catalog
from billing.invoicing.due_index import DueIndex
from billing.rating.service import RatingService
from billing.settings import (
    CONFIG_TABLE,
    EVENT_BUS_ENV,
    INVOICE_BUCKET_ENV,
    INVOICES_TABLE,
    LEDGER_TABLE,
    QUARANTINE_BUCKET_ENV,
    RUN_BUCKET_ENV,
    SENDER_ENV,
    SES_MAX_SEND_RATE_ENV,
)
from billing.store.config_store import ConfigStore
from billing.store.due_hints import DueHints
from billing.store.invoice_store import InvoiceStore
from billing.store.ledger_store import LedgerStore
from billing.store.quarantine import QUARANTINE_PREFIX, Quarantine
from billing_cli.local.esm import MappingSettings, deliver
from billing_cli.local.provision import create_tables
from billing_cli.local.runtime import LOCAL_SES_MAX_SEND_RATE
from functions.rate_usage import app as rate_usage
from tests.support.kinesis import shard

REGION = "us-east-1"
EXAMPLE_EVENTS = Path(__file__).resolve().parents[2] / "examples" / "events.jsonl"
# The invoice run's clock for November 2026: every example event is in the past.
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


@dataclass
class Aws:
    dynamodb: Any
    s3: Any
    tables: dict[str, str]
    bucket: str

    @property
    def ledger_table(self) -> str:
        return self.tables[LEDGER_TABLE.env_var]

    @property
    def config_table(self) -> str:
        return self.tables[CONFIG_TABLE.env_var]

    def ledger_store(self) -> LedgerStore:
        return LedgerStore(self.dynamodb, self.ledger_table)

    def due_hints(self) -> DueHints:
        return DueHints(self.dynamodb, self.ledger_table)

    def push_accounts(self, accounts: Accounts, now: datetime = NOW) -> None:
        """Store the accounts as `billing accounts push` does: their due hints, then them."""
        config = ConfigStore(self.dynamodb, self.config_table)
        invoices = InvoiceStore(self.dynamodb, self.tables[INVOICES_TABLE.env_var])
        index = DueIndex(hints=self.due_hints(), invoices=invoices)
        index.pushed(config.all_accounts(), accounts.accounts, now)
        config.put_accounts(accounts)

    def service(self, dynamodb: Any = None, now: datetime = NOW) -> RatingService:
        """A rating service on fresh stores (a cold start), optionally on another client."""
        client = dynamodb or self.dynamodb
        return RatingService(
            config=ConfigStore(client, self.config_table),
            ledgers=LedgerStore(client, self.ledger_table),
            quarantine=Quarantine(self.s3, self.bucket),
            clock=lambda: now,
            hints=DueHints(client, self.ledger_table),
        )

    def rate_examples(self, batch_size: int = 10) -> None:
        """The example events through the real rater, `batch_size` records a delivery."""
        service = self.service()
        deliver(
            shard(EXAMPLE_EVENTS.read_bytes().splitlines()),
            lambda event: service.process(
                rate_usage.stream_records(KinesisStreamEvent(event))
            ).response(),
            MappingSettings(batch_size=batch_size),
        )

    def quarantined(self) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=QUARANTINE_PREFIX
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def invoicing_environment(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> str:
    """What the invoice run's steps and the account APIs read beside the tables: the invoice
    bucket (its name returned), the bus, the sender and its SES identity; tracing off."""
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    bucket = "test-invoices"
    aws.s3.create_bucket(Bucket=bucket)
    boto3.client("events", region_name=REGION).create_event_bus(Name="billing-events")
    monkeypatch.setenv(INVOICE_BUCKET_ENV, bucket)
    monkeypatch.setenv(RUN_BUCKET_ENV, "test-invoice-runs")  # the due step's, not written
    monkeypatch.setenv(EVENT_BUS_ENV, "billing-events")
    monkeypatch.setenv(SENDER_ENV, "invoices@billing.example")
    boto3.client("sesv2", region_name=REGION).create_email_identity(
        EmailIdentity="invoices@billing.example"
    )
    return bucket


@pytest.fixture
def aws(
    monkeypatch: pytest.MonkeyPatch, example_catalog: Catalog, example_accounts: Accounts
) -> Iterator[Aws]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        tables = create_tables(dynamodb, "test")
        bucket = "test-quarantine"
        s3.create_bucket(Bucket=bucket)
        ConfigStore(dynamodb, tables[CONFIG_TABLE.env_var]).put_catalog(example_catalog)
        for env_var, name in tables.items():
            monkeypatch.setenv(env_var, name)
        monkeypatch.setenv(QUARANTINE_BUCKET_ENV, bucket)
        monkeypatch.setenv(SES_MAX_SEND_RATE_ENV, LOCAL_SES_MAX_SEND_RATE)  # moto: no quota
        aws = Aws(dynamodb, s3, tables, bucket)
        aws.push_accounts(example_accounts)
        yield aws
