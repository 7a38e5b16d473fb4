"""`billing webhooks add|list|test|remove` on the local runtime: an endpoint on 127.0.0.1
registered with its secret in (moto's) Secrets Manager, listed without it, sent a signed
test event the receiver verifies, and removed with its secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from billing_cli.local.runtime import REGION, LocalAws, local_aws
from billing_cli.main import app
from tests.support.webhook_receiver import Receiver, serving_receiver


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
