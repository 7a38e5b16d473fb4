"""`billing webhooks add` and `test` against a deployment on AWS (moto standing in, no
endpoint URL, not the local runtime): what the URL's host resolves to is checked before
anything is stored, a malformed URL is refused with a message (never a traceback, never
its password), and `test` on an endpoint stored before those checks reports the refusal
and exits 1 without connecting. Resolution and connections are monkeypatched: offline."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from billing.settings import CONFIG_TABLE, STACK_OUTPUTS
from billing.store.webhook_endpoints import ENDPOINT_PREFIX, WEBHOOKS_PARTITION
from billing.webhooks import addresses
from billing_cli.commands import common
from billing_cli.deployment import Deployment
from billing_cli.local.provision import create_tables
from billing_cli.main import app

REGION = "us-east-1"
PUBLIC = "93.184.215.14"


@pytest.fixture
def on_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        tables = create_tables(session.client("dynamodb"), "prod")
        outputs = {STACK_OUTPUTS.config_table: tables[CONFIG_TABLE.env_var]}
        deployment = Deployment("UsageBilling-prod", outputs, session, None)
        monkeypatch.setattr(common, "connect", lambda *args: deployment)
        yield deployment


@pytest.fixture
def resolving(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """host -> addresses (a host not in it does not resolve); connections recorded under
    "connected" and refused."""
    table: dict[str, list[str]] = {}

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    def connect(address: tuple[str, int], timeout: float) -> socket.socket:
        table.setdefault("connected", []).append(address[0])
        raise ConnectionRefusedError(address)

    monkeypatch.setattr(addresses, "resolve", resolve)
    monkeypatch.setattr(socket, "create_connection", connect)
    return table


def billing(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://hooks.example.com/billing", "resolves to 10.0.0.5, a private address"),
        ("https://nowhere.example.com/billing", "does not resolve"),
        ("https://[::1/hook", "not a valid webhook URL (its host is malformed)"),
        ("https://erp-user:s3cr3t-pass@hooks.example.com/x", "user name or password"),
        ("https://hooks.example.com/a b", "may not contain a space"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ],
)
def test_add_refuses_what_no_receiver_is_with_a_message(
    on_aws: Deployment, resolving: dict[str, list[str]], url: str, message: str
) -> None:
    resolving["hooks.example.com"] = ["10.0.0.5"]

    added = billing("webhooks", "add", url, "--event", "InvoiceIssued")

    assert (added.exit_code, type(added.exception)) == (2, SystemExit), added.output
    assert message in " ".join(added.output.split())
    assert "s3cr3t" not in added.output
    assert on_aws.webhook_endpoints().all() == []


def test_add_registers_a_url_on_public_addresses(
    on_aws: Deployment, resolving: dict[str, list[str]]
) -> None:
    resolving["hooks.example.com"] = [PUBLIC]

    added = billing("webhooks", "add", "https://hooks.example.com/x", "--event", "InvoiceIssued")

    assert added.exit_code == 0, added.output
    [endpoint] = on_aws.webhook_endpoints().all()
    assert endpoint.url == "https://hooks.example.com/x"
    assert "connected" not in resolving  # registering resolves, never connects


def _stored(deployment: Deployment, endpoint_id: str, url: str) -> None:
    """An endpoint as an earlier version registered it, unchecked, with its secret."""
    table = deployment.output(STACK_OUTPUTS.config_table)
    name, _ = deployment.webhook_secrets().create(endpoint_id)
    deployment.client("dynamodb").put_item(
        TableName=table,
        Item={
            "pk": {"S": WEBHOOKS_PARTITION},
            "sk": {"S": f"{ENDPOINT_PREFIX}{endpoint_id}"},
            "url": {"S": url},
            "event_types": {"L": [{"S": "InvoiceIssued"}]},
            "secret_name": {"S": name},
        },
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://erp-user:s3cr3t-pass@erp.example.invalid/hook",
        "https://meta.example.com/latest",
        "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
    ],
)
def test_test_reports_a_refused_stored_endpoint_and_connects_nowhere(
    on_aws: Deployment, resolving: dict[str, list[str]], url: str
) -> None:
    resolving["meta.example.com"] = ["169.254.169.254"]
    _stored(on_aws, "we_0123456789abcdef", url)

    tested = billing("webhooks", "test", "we_0123456789abcdef")

    assert (tested.exit_code, type(tested.exception)) == (1, SystemExit), tested.output
    assert ": EndpointError" in tested.output
    assert "s3cr3t" not in tested.output
    assert "connected" not in resolving
