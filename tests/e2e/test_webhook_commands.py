"""`billing webhooks add|list|test|remove` on the local runtime: an endpoint on 127.0.0.1
registered with its secret in (moto's) Secrets Manager, listed without it, sent a signed
test event the receiver verifies, and removed with its secret; and a local invoice run's
events delivered to it through the local bus, queue and poller."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from billing.core.catalog import load_accounts, load_catalog
from billing.core.webhooks.payload import webhook_id
from billing_cli.local.runtime import REGION, LocalAws, local_aws
from billing_cli.main import app
from tests.support.webhook_receiver import Receiver, serving_receiver

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def billing(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving_receiver() as serving:
        yield serving


@pytest.fixture
def local() -> Iterator[LocalAws]:
    with local_aws() as aws:
        yield aws


def test_add_list_test_and_remove_an_endpoint(local: LocalAws, receiver: Receiver) -> None:
    receiver.clock = None
    added = billing("webhooks", "add", f"{receiver.url}/hook", "--event", "InvoiceIssued", "--json")
    assert added.exit_code == 0, added.output
    endpoint = json.loads(added.output)
    assert endpoint["secret"].startswith("whsec_")
    receiver.secrets["/hook"] = endpoint["secret"]

    listed = json.loads(billing("webhooks", "list", "--json").output)["endpoints"]
    assert listed == [
        {
            "id": endpoint["id"],
            "url": f"{receiver.url}/hook",
            "event_types": ["InvoiceIssued"],
            "secret_name": endpoint["secret_name"],
        }
    ]
    assert "whsec_" not in json.dumps(listed)

    tested = billing("webhooks", "test", endpoint["id"])
    assert tested.exit_code == 0, tested.output
    assert receiver.refused == []
    [(path, message_id, body)] = receiver.requests
    assert path == "/hook"
    assert message_id in tested.output
    assert json.loads(body)["type"] == "WebhookTest"

    removed = billing("webhooks", "remove", endpoint["id"])
    assert removed.exit_code == 0, removed.output
    assert json.loads(billing("webhooks", "list", "--json").output) == {"endpoints": []}
    secrets = boto3.client("secretsmanager", region_name=REGION).list_secrets()["SecretList"]
    assert secrets == []


def test_a_failing_test_delivery_exits_1(local: LocalAws, receiver: Receiver) -> None:
    receiver.clock, receiver.failures_left = None, 1
    added = billing("webhooks", "add", f"{receiver.url}/x", "--event", "CreditNoteIssued", "--json")
    endpoint = json.loads(added.output)
    receiver.secrets["/x"] = endpoint["secret"]

    tested = billing("webhooks", "test", endpoint["id"])

    assert tested.exit_code == 1
    assert "HTTP 500" in tested.output


def test_a_plain_http_url_elsewhere_is_refused(local: LocalAws) -> None:
    result = billing("webhooks", "add", "http://erp.example.com/hook", "--event", "InvoiceIssued")
    assert result.exit_code != 0
    assert "https" in result.output


def test_the_local_runtime_delivers_an_invoice_runs_events_to_a_local_receiver(
    local: LocalAws, receiver: Receiver
) -> None:
    # GIVEN an endpoint on 127.0.0.1 for InvoiceIssued, and the examples invoiced for November
    receiver.clock = None
    added = billing("webhooks", "add", f"{receiver.url}/erp", "--event", "InvoiceIssued", "--json")
    endpoint = json.loads(added.output)
    receiver.secrets["/erp"] = endpoint["secret"]
    catalog = load_catalog(EXAMPLES / "catalog.yaml")
    local.load(catalog, load_accounts(EXAMPLES / "accounts.yaml", catalog))
    local.run_invoices("november", {"now": "2026-12-02T00:00:00Z", "period": "2026-11"})

    # WHEN the local poller drains the webhook queue the bus's rule filled
    poller = local.webhook_poller()
    while poller.poll():
        pass

    # THEN every invoice arrived once, signed, under the webhook id of its event_id
    assert receiver.refused == []
    numbers = [json.loads(body)["data"]["invoice_number"] for _, _, body in receiver.requests]
    assert numbers, "no invoice was announced"
    assert len(set(numbers)) == len(numbers)
    assert set(receiver.accepted) == {
        webhook_id(f"InvoiceIssued:{number}", endpoint["id"]) for number in numbers
    }
