"""`billing rerate --apply` on an open period: a filter fixed in the catalog, then the
period's aggregates replaced from the archive while the rater keeps rating; a rater batch
that lands between the apply's read and its write is neither lost nor counted twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from billing.core.catalog import load_catalog
from billing.store.ledger_store import LedgerStore
from billing_cli.commands.common import load_files, read_records
from billing_cli.local.esm import MappingSettings, deliver
from billing_cli.local.run import put_on_stream, read_stream
from billing_cli.local.runtime import RATE_USAGE, REGION, LocalAws, invoke_function, local_aws
from billing_cli.main import app
from functions.rate_usage import app as rate_usage
from tests.integration.test_archive_replay import EXAMPLES, RUN_AT

pytestmark = pytest.mark.integration

EU = "{region: [eu-west-1, eu-central-1]}"


def ap_south(event_id: str, quantity: str) -> bytes:
    return (
        f'{{"event_id":"{event_id}","account_id":"acct-1","meter":"storage_gb_hours",'
        f'"quantity":"{quantity}","timestamp":"2026-11-21T12:00:00Z",'
        f'"dimensions":{{"region":"ap-south-1"}}}}'
    ).encode()


def rate(aws: LocalAws, records: list[bytes]) -> None:
    kinesis = boto3.client("kinesis", region_name=REGION)
    before = len(read_stream(kinesis))
    put_on_stream(kinesis, records)
    invoke = invoke_function(boto3.client("lambda", region_name=REGION), RATE_USAGE)
    deliver(read_stream(kinesis)[before:], invoke, MappingSettings(batch_size=7))


@pytest.fixture
def open_november(tmp_path: Path) -> Iterator[LocalAws]:
    """The examples rated and archived, November not invoiced; then the EU storage charge's
    filter fixed to take ap-south-1 too (acct-1 has 500 GB-hours there), and pushed."""
    catalog, accounts = load_files(EXAMPLES / "catalog.yaml", EXAMPLES / "accounts.yaml")
    with local_aws() as aws:
        aws.load(catalog, accounts, RUN_AT)
        rate_usage.service()._clock = lambda: RUN_AT
        rate(aws, read_records(EXAMPLES / "events.jsonl"))
        aws.firehose().drain()
        text = (EXAMPLES / "catalog.yaml").read_text()
        assert text.count(EU) == 1
        fixed = tmp_path / "catalog.yaml"
        fixed.write_text(text.replace(EU, "{region: [eu-west-1, eu-central-1, ap-south-1]}"))
        aws.config.put_catalog(load_catalog(fixed))
        rate_usage.service.cache_clear()  # the rater reads the pushed catalog
        rate_usage.service()._clock = lambda: RUN_AT
        yield aws


def billing(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document


def storage_eu(account: str) -> tuple[str, str]:
    usage = billing("usage", account, "--period", "2026-11")
    [storage] = [m for m in usage["meters"] if m["meter"] == "storage_gb_hours"]
    [charge] = [c for c in storage["charges"] if c["description"] == "Storage (EU)"]
    return charge["quantity"], charge["amount"]


def test_apply_replaces_the_aggregates_and_the_rater_adds_on_top(open_november: LocalAws) -> None:
    # WHEN the period is re-rated and applied
    document = billing("rerate", "--period", "2026-11", "--apply")
    outcomes = {r["account_id"]: r["outcome"] for r in document["applied"]}
    # THEN acct-1's EU share takes its ap-south-1 storage: 10,000 + 500 = 10,500 GB-hours
    # at 0.00012 = 1.26
    assert outcomes["acct-1"] == "replaced"
    assert storage_eu("acct-1") == ("10500", "1.26")
    # AND a second apply finds nothing to change
    again = billing("rerate", "--period", "2026-11", "--apply")
    assert {r["outcome"] for r in again["applied"]} == {"unchanged"}
    # AND the rater goes on adding to the replaced aggregates: 10,500 + 100
    rate(open_november, [ap_south("a1-sto-ap-2", "100")])
    assert storage_eu("acct-1") == ("10600", "1.27")


def test_a_rater_batch_landing_during_the_apply_is_counted_once(
    open_november: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a rater batch (a new ap-south-1 event, then archived) that lands between the
    # apply's read of acct-1's ledger and its write
    save = LedgerStore.save
    landed: list[bool] = []

    def racing_save(store: LedgerStore, write: Any) -> None:
        if write.after.account_id == "acct-1" and not landed:
            landed.append(True)
            rate(open_november, [ap_south("a1-sto-ap-3", "40")])
            open_november.firehose().drain()
        save(store, write)

    monkeypatch.setattr(LedgerStore, "save", racing_save)
    # WHEN the period is applied
    document = billing("rerate", "--period", "2026-11", "--apply", "--account", "acct-1")
    # THEN the first write lost to the rater's, the apply cut again, and the event is in
    # once: 10,000 + 500 + 40 = 10,540 GB-hours at 0.00012 = 1.2648 → 1.26
    assert landed == [True]
    assert document["applied"] == [{"account_id": "acct-1", "outcome": "replaced"}]
    assert storage_eu("acct-1") == ("10540", "1.26")


def test_apply_refuses_a_catalog_file_and_an_invoiced_period_without_a_reason(
    open_november: LocalAws,
) -> None:
    result = CliRunner().invoke(
        app, ["rerate", "--period", "2026-11", "--apply", "--catalog", "x.yaml"]
    )
    assert result.exit_code == 2
    assert "push the corrected one first" in result.output
    report = open_november.run_invoices(
        "november", {"period": "2026-11", "now": "2026-12-01T06:00:00Z"}
    )
    assert report["issued"] == 6
    result = CliRunner().invoke(
        app, ["rerate", "--period", "2026-11", "--apply", "--account", "acct-1"]
    )
    assert result.exit_code == 2
    assert "a correction of it is a credit note, which needs a reason" in result.output
