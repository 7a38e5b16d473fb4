"""Local runs for the corrections' tests: rated, archived (as Firehose does) and optionally
invoiced."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from typer.testing import CliRunner

from billing_cli.commands.common import load_files
from billing_cli.local.esm import MappingSettings, deliver
from billing_cli.local.run import put_on_stream, read_stream
from billing_cli.local.runtime import RATE_USAGE, REGION, LocalAws, invoke_function, local_aws
from billing_cli.main import app
from functions.rate_usage import app as rate_usage

RUN_AT = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def rate(aws: LocalAws, records: Sequence[bytes], batch_size: int = 7) -> None:
    kinesis = boto3.client("kinesis", region_name=REGION)
    before = len(read_stream(kinesis))
    put_on_stream(kinesis, list(records))
    invoke = invoke_function(boto3.client("lambda", region_name=REGION), RATE_USAGE)
    deliver(read_stream(kinesis)[before:], invoke, MappingSettings(batch_size=batch_size))
    aws.firehose().drain()


@contextmanager
def local_run(
    folder: Path, catalog: str, accounts: str, events: Sequence[str], clock: datetime = RUN_AT
) -> Iterator[LocalAws]:
    (folder / "catalog.yaml").write_text(catalog, encoding="utf-8")
    (folder / "accounts.yaml").write_text(accounts, encoding="utf-8")
    loaded_catalog, loaded_accounts = load_files(folder / "catalog.yaml", folder / "accounts.yaml")
    with local_aws() as aws:
        aws.load(loaded_catalog, loaded_accounts, clock)
        rate_usage.service.cache_clear()
        rate_usage.service()._clock = lambda: clock
        rate(aws, [e.encode() for e in events])
        yield aws


def billing(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document
