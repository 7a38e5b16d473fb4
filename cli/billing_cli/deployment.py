"""Finding a deployed stack's resources, for the commands that work on one.

A deployment is found by its CloudFormation outputs (the keys in
`billing.settings.STACK_OUTPUTS`), on AWS through the standard credential chain or on any
AWS-compatible endpoint given with `--endpoint-url` (`billing local` serves one). The stack
is the one named with `--stack` (or `BILLING_STACK`), else the only `UsageBilling-*` stack
there is. Every way this can fail ends in a `DeploymentError` that says what to do.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from billing.corrections.sources import CorrectionSources
from billing.customer.account_views import AccountViews
from billing.invoicing.due_index import DueIndex
from billing.settings import STACK_NAME_PREFIX, STACK_OUTPUTS
from billing.store.api_keys import ApiKeys
from billing.store.archive_objects import ArchiveObjects
from billing.store.bucket_objects import BucketObjects
from billing.store.config_store import ConfigStore
from billing.store.credit_notes import CreditNoteStore
from billing.store.documents import DocumentStore
from billing.store.due_hints import DueHints
from billing.store.invocations import FunctionInvoker
from billing.store.invoice_store import InvoiceStore
from billing.store.ledger_store import LedgerStore
from billing.store.quarantine_reader import QuarantineReader
from billing.store.throttle_keys import ThrottleKeys
from billing.store.webhook_endpoints import WebhookEndpoints, WebhookSecrets, secret_prefix
from billing.store.workflows import WorkflowStarter
from billing.warehouse.export import WarehouseSources

STACK_ENV: Final = "BILLING_STACK"
# The output only `billing local`'s stand-in stack has (no deployed stack defines it): what
# tells the command line it works on the local runtime, not on AWS.
LOCAL_RUNTIME_OUTPUT: Final = "LocalRuntime"
# An endpoint that is not AWS (moto, LocalStack) takes any credentials; these are not secret.
_ENDPOINT_CREDENTIALS: Final = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
_RETRIES: Final = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5)


class DeploymentError(Exception):
    """Why the command cannot reach a deployment, and what to do about it."""


@dataclass(frozen=True)
class Deployment:
    stack: str
    outputs: dict[str, str]
    session: boto3.Session
    endpoint_url: str | None

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url, config=_RETRIES)

    @property
    def local_runtime(self) -> bool:
        """Whether this is `billing local`'s runtime, by its stack's marker output. Not by
        the stack's name (`cdk deploy -c stage=local` names a stack on AWS
        UsageBilling-local too), nor by an endpoint URL alone (the in-process runtime has
        none, and an endpoint URL may be AWS's own, a VPC endpoint's)."""
        return LOCAL_RUNTIME_OUTPUT in self.outputs

    def output(self, key: str) -> str:
        try:
            return self.outputs[key]
        except KeyError:
            raise DeploymentError(
                f"stack {self.stack} has no output {key}: is it an older version? "
                "Deploy the current one (cdk deploy)."
            ) from None

    def config(self) -> ConfigStore:
        return ConfigStore(self.client("dynamodb"), self.output(STACK_OUTPUTS.config_table))

    def ledgers(self) -> LedgerStore:
        return LedgerStore(self.client("dynamodb"), self.output(STACK_OUTPUTS.ledger_table))

    def invoices(self) -> InvoiceStore:
        return InvoiceStore(self.client("dynamodb"), self.output(STACK_OUTPUTS.invoices_table))

    def due_index(self) -> DueIndex:
        """The accounts' due hints, kept by pushes and rebuilt by `billing invoices reindex`."""
        hints = DueHints(self.client("dynamodb"), self.output(STACK_OUTPUTS.ledger_table))
        return DueIndex(hints=hints, invoices=self.invoices())

    def documents(self) -> DocumentStore:
        return DocumentStore(self.client("s3"), self.output(STACK_OUTPUTS.invoice_bucket))

    def webhook_endpoints(self) -> WebhookEndpoints:
        return WebhookEndpoints(self.client("dynamodb"), self.output(STACK_OUTPUTS.config_table))

    def webhook_secrets(self) -> WebhookSecrets:
        """The endpoints' secrets: on AWS under the stack's key; `billing local` (no such
        output) keeps them under the endpoint's default."""
        prefix = secret_prefix(self.output(STACK_OUTPUTS.config_table))
        key = self.outputs.get(STACK_OUTPUTS.webhook_secrets_key)
        return WebhookSecrets(self.client("secretsmanager"), prefix, key)

    def invoice_workflow(self) -> WorkflowStarter:
        return WorkflowStarter(
            self.client("stepfunctions"), self.output(STACK_OUTPUTS.invoice_state_machine)
        )

    def send_invoices_function(self) -> FunctionInvoker:
        return FunctionInvoker(
            self.client("lambda"), self.output(STACK_OUTPUTS.send_invoices_function)
        )

    def customer_keys(self) -> ApiKeys:
        """The customer API's keys and portal links (`billing keys`, `billing portal-link`)."""
        return ApiKeys(self.client("dynamodb"), self.output(STACK_OUTPUTS.customer_keys_table))

    def throttle_keys(self) -> ThrottleKeys:
        """The API keys of the customer API's usage plan, one per customer key."""
        plan = self.output(STACK_OUTPUTS.customer_usage_plan)
        return ThrottleKeys(self.client("apigateway"), plan)

    def archive(self) -> ArchiveObjects:
        """The raw archive Firehose writes (`billing rerate`, `billing explain` read it)."""
        return ArchiveObjects(self.client("s3"), self.output(STACK_OUTPUTS.archive_bucket))

    def warehouse_sources(self) -> WarehouseSources:
        """What the warehouse's tables are made from (docs/warehouse.md)."""
        s3 = self.client("s3")
        return WarehouseSources(
            archive=BucketObjects(s3, self.output(STACK_OUTPUTS.archive_bucket)),
            invoices=BucketObjects(s3, self.output(STACK_OUTPUTS.invoice_bucket)),
            quarantine=BucketObjects(s3, self.output(STACK_OUTPUTS.quarantine_bucket)),
            ledgers=self.ledgers(),
            config=self.config(),
        )

    def corrections(self) -> CorrectionSources:
        """What `billing rerate` and `billing explain` read: the archive replayed, the
        stored invoices and ledgers, and the quarantine's PERIOD_CLOSED refusals."""
        return CorrectionSources(
            archive=self.archive(),
            config=self.config(),
            ledgers=self.ledgers(),
            invoices=self.invoices(),
            documents=self.documents(),
            quarantine=QuarantineReader(
                self.client("s3"), self.output(STACK_OUTPUTS.quarantine_bucket)
            ),
        )

    def credit_notes(self) -> CreditNoteStore:
        """The credit notes' records, in the invoice table (`billing invoices list|show`)."""
        return CreditNoteStore(self.client("dynamodb"), self.output(STACK_OUTPUTS.invoices_table))

    def views(self, clock: Callable[[], datetime] | None = None) -> AccountViews:
        """What the usage API answers, read straight from the stores (as of `clock`, by
        default the real time)."""
        return AccountViews(
            config=self.config(),
            ledgers=self.ledgers(),
            invoices=self.invoices(),
            documents=self.documents(),
            credit_notes=self.credit_notes(),
            **({"clock": clock} if clock is not None else {}),
        )


def connect(
    endpoint_url: str | None = None, stack: str | None = None, region: str | None = None
) -> Deployment:
    """The deployment the command works on; DeploymentError if there is none to reach."""
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    session = boto3.Session(region_name=region)
    if endpoint_url and (session.get_credentials() is None or session.region_name is None):
        credentials = {} if session.get_credentials() else _ENDPOINT_CREDENTIALS
        session = boto3.Session(region_name=session.region_name or "us-east-1", **credentials)
    if session.region_name is None:
        raise DeploymentError(
            "no AWS region: set AWS_REGION (or a profile's region), or pass --region"
        )
    if session.get_credentials() is None:
        raise DeploymentError(
            "no AWS credentials found: configure them (aws configure, AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID), or pass --endpoint-url to use a local endpoint "
            "(start one with `billing local`)"
        )
    where = endpoint_url or f"AWS region {session.region_name}"
    cloudformation = session.client("cloudformation", endpoint_url=endpoint_url, config=_RETRIES)
    name = stack or os.environ.get(STACK_ENV) or None
    try:
        found = _describe(cloudformation, name, where)
    except EndpointConnectionError:
        raise DeploymentError(
            f"cannot reach {where}: is the endpoint running (`billing local`)?"
        ) from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        message = error.response.get("Error", {}).get("Message", "")
        if code == "ValidationError" and "does not exist" in message:
            raise DeploymentError(
                f"no stack {name} in {where}: deploy it (cdk deploy) or name another with --stack"
            ) from None
        raise DeploymentError(f"cannot read the stack in {where}: {code}") from None
    except BotoCoreError as error:
        raise DeploymentError(f"cannot reach {where}: {error}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    return Deployment(found["StackName"], outputs, session, endpoint_url)


def _describe(cloudformation: Any, name: str | None, where: str) -> dict[str, Any]:
    if name:
        stacks: list[dict[str, Any]] = cloudformation.describe_stacks(StackName=name)["Stacks"]
        return stacks[0]
    pages = cloudformation.get_paginator("describe_stacks").paginate()
    ours = [
        stack
        for page in pages
        for stack in page["Stacks"]
        if stack["StackName"].startswith(f"{STACK_NAME_PREFIX}-")
        and not stack["StackStatus"].startswith("DELETE")
    ]
    if not ours:
        raise DeploymentError(
            f"no {STACK_NAME_PREFIX}-* stack in {where}: deploy one (cdk deploy), start a "
            "local one (`billing local`), or name it with --stack"
        )
    if len(ours) > 1:
        names = ", ".join(sorted(stack["StackName"] for stack in ours))
        raise DeploymentError(f"several stacks in {where} ({names}): choose one with --stack")
    only: dict[str, Any] = ours[0]
    return only
