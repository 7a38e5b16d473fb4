"""`billing webhooks add|list|test|rotate|remove` on the local runtime: an endpoint on
127.0.0.1 registered with its secret in (moto's) Secrets Manager, listed without it, sent a
signed test event the receiver verifies, its secret rotated (both signing for a while), and
removed with its secret; and a local invoice run's events delivered to it through the
local bus, queue, fan-out and poller; and the examples' rejected records reaching it as
UsageRejected summaries."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from billing.core.catalog import load_accounts, load_catalog
from billing.core.webhooks.payload import webhook_id
from billing_cli import sending
from billing_cli.local.esm import MappingSettings
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


def test_a_rotated_secret_signs_beside_the_old_one(local: LocalAws, receiver: Receiver) -> None:
    # GIVEN an endpoint whose receiver knows its first secret
    receiver.clock = None
    added = billing("webhooks", "add", f"{receiver.url}/old", "--event", "InvoiceIssued", "--json")
    endpoint = json.loads(added.output)
    receiver.secrets["/old"] = endpoint["secret"]

    # WHEN the secret is rotated
    rotated = billing("webhooks", "rotate", endpoint["id"], "--json")

    # THEN a new secret is shown, once, and kept under the same name
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.output)
    assert new["secret"].startswith("whsec_")
    assert new["secret"] != endpoint["secret"]
    assert (new["id"], new["secret_name"], new["previous_valid_hours"]) == (
        endpoint["id"],
        endpoint["secret_name"],
        24,
    )
    assert "whsec_" not in billing("webhooks", "list", "--json").output
    # and, within the grace window, a delivery verifies under the old secret and the new
    assert billing("webhooks", "test", endpoint["id"]).exit_code == 0
    receiver.secrets["/old"] = new["secret"]
    assert billing("webhooks", "test", endpoint["id"]).exit_code == 0
    assert receiver.refused == []
    assert len(receiver.requests) == 2


def test_rotating_an_unknown_endpoint_fails(local: LocalAws) -> None:
    result = billing("webhooks", "rotate", "we_0000000000000000")
    assert result.exit_code != 0
    assert "no webhook endpoint we_0000000000000000" in result.output


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


def test_the_examples_rejections_reach_a_local_receiver_as_summaries(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    # GIVEN the local runtime on a December test clock, the examples' catalog and accounts,
    # and an endpoint on 127.0.0.1 for UsageRejected
    with local_aws(clock=datetime(2026, 12, 1, 13, 0, tzinfo=UTC)) as aws:
        pollers = aws.pollers(MappingSettings(batch_size=100))

        def rate(_seconds: float) -> None:
            while sum(poller.poll() for poller in pollers):
                pass

        monkeypatch.setattr(sending, "pause", rate)
        for kind, name in (("catalog", "catalog.yaml"), ("accounts", "accounts.yaml")):
            assert billing(kind, "push", str(EXAMPLES / name)).exit_code == 0
        receiver.clock = None
        added = billing("webhooks", "add", f"{receiver.url}/ops", "--event", "UsageRejected")
        assert added.exit_code == 0, added.output
        endpoint = json.loads(billing("webhooks", "list", "--json").output)["endpoints"][0]
        receiver.secrets["/ops"] = boto3.client(
            "secretsmanager", region_name=REGION
        ).get_secret_value(SecretId=endpoint["secret_name"])["SecretString"]

        # WHEN the examples are sent and rated, and the webhook queue drained
        billing("send", str(EXAMPLES / "events.jsonl"), "--wait", "60", "--json")
        poller = aws.webhook_poller()
        while poller.poll():
            pass

    # THEN the receiver verified summaries whose counts are the examples' five rejections
    # (tests/e2e/test_quarantine_commands.py): once each, by webhook id
    assert receiver.refused == []
    bodies = [json.loads(body) for _, _, body in receiver.requests]
    assert {body["type"] for body in bodies} == {"UsageRejected"}
    assert len(receiver.accepted) == len(bodies)
    reasons: Counter[str] = Counter()
    for body in bodies:
        reasons.update(body["data"]["reasons"])
    assert reasons == {
        "FUTURE_TIMESTAMP": 1,
        "NOT_SUBSCRIBED": 2,
        "UNKNOWN_ACCOUNT": 1,
        "UNKNOWN_METER": 1,
    }
    assert sum(body["data"]["rejected"] for body in bodies) == 5
    assert set(receiver.accepted) == {
        webhook_id(body["data"]["event_id"], endpoint["id"]) for body in bodies
    }
