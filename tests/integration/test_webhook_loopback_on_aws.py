"""A plain-HTTP loopback webhook URL ("`billing local` delivers to
127.0.0.1") was allowed by the stack's *name*, not by the deployment being the local
runtime (now: its stack's marker output, billing_cli.deployment.LOCAL_RUNTIME_OUTPUT). A
stage called `local` is a valid stage (letters and digits), so `cdk deploy -c stage=local`
makes an AWS stack named `UsageBilling-local`, and on it `billing webhooks add
http://127.0.0.1:9001/...` was registered: the deliverer in Lambda would then POST signed
events to the Lambda runtime API on the sandbox's loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from billing.settings import CONFIG_TABLE, STACK_NAME_PREFIX, STACK_OUTPUTS
from billing_cli.commands import common
from billing_cli.commands.warehouse import LOCAL_STACK
from billing_cli.deployment import Deployment
from billing_cli.local.provision import create_tables
from billing_cli.main import app
from stacks.settings import Stage

REGION = "us-east-1"
RUNTIME_API = "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next"


@pytest.fixture
def aws_stack_named_local(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    """A deployment on AWS (no endpoint URL: moto stands in for the real endpoints) whose
    stack was deployed with `-c stage=local`."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        tables = create_tables(session.client("dynamodb"), "prodlike")
        outputs = {STACK_OUTPUTS.config_table: tables[CONFIG_TABLE.env_var]}
        stage = Stage.from_context(cdk.App(context={"stage": "local"}).node)
        deployment = Deployment(f"{STACK_NAME_PREFIX}-{stage.name}", outputs, session, None)
        monkeypatch.setattr(common, "connect", lambda *args: deployment)
        yield deployment


def test_a_loopback_url_is_refused_on_an_aws_stack_named_local(
    aws_stack_named_local: Deployment,
) -> None:
    assert aws_stack_named_local.stack == LOCAL_STACK
    assert aws_stack_named_local.endpoint_url is None  # AWS itself, not `billing local`

    added: Any = CliRunner().invoke(
        app, ["webhooks", "add", RUNTIME_API, "--event", "InvoiceIssued"]
    )

    # Expected: exit 2, "a webhook URL must be https" (nothing registered).
    # Before the fix: exit 0, "endpoint we_...: http://127.0.0.1:9001/..." and its secret.
    assert added.exit_code == 2, added.output
    assert aws_stack_named_local.webhook_endpoints().all() == []
