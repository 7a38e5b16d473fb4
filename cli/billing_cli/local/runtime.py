"""The embedded local runtime: the whole pipeline on moto, in this process.

`LocalAws` provisions, from the same declarations the stack uses, the tables, buckets,
event bus, SES sender, Lambda functions (run by the bridge) and the invoice state machine
(from the same ASL file), and points the handlers at them through their environment.
Nothing is kept between runs.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Final
from unittest import mock

import boto3
from moto import mock_aws
from moto.kinesis.models import Shard
from moto.ses.models import ses_backends

from billing.catalog import Accounts, Catalog
from billing.resources import (
    CONFIG_TABLE,
    EVENT_BUS_ENV,
    INVOICE_BUCKET_ENV,
    INVOICES_TABLE,
    LEDGER_TABLE,
    QUARANTINE_BUCKET_ENV,
    SENDER_ENV,
    STACK_NAME_PREFIX,
    STACK_OUTPUTS,
)
from billing.store.config_store import ConfigStore
from billing.store.invoice_store import InvoiceStore
from billing.store.ledger_store import LedgerStore
from billing_cli.local import workflow
from billing_cli.local.lambdas import Handler, bridge, create_functions
from billing_cli.local.provision import create_tables
from functions.issue_invoices import app as issue_invoices
from functions.list_due import app as list_due
from functions.report_run import app as report_run
from functions.send_invoices import app as send_invoices

REGION: Final = "us-east-1"
PREFIX: Final = "billing-local"
SENDER: Final = "invoices@billing.local"
EVENT_BUS: Final = f"{PREFIX}-events"
QUARANTINE_BUCKET: Final = f"{PREFIX}-quarantine"
INVOICE_BUCKET: Final = f"{PREFIX}-invoices"
USAGE_STREAM: Final = f"{PREFIX}-usage"
STACK: Final = f"{STACK_NAME_PREFIX}-local"
_FAKE_CREDENTIALS: Final = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_DEFAULT_REGION": REGION,
    # Handlers log and emit metrics to stdout in Lambda; locally stdout is the user's.
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "UsageBilling",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


def task_handlers() -> dict[str, Handler]:
    """The invoice workflow's task functions, by name, as deployed."""
    modules = {
        "list_due": list_due,
        "issue_invoices": issue_invoices,
        "send_invoices": send_invoices,
        "report_run": report_run,
    }
    for module in modules.values():
        service = getattr(module.handler, "service", None)
        if service is not None:
            service.cache_clear()  # a fresh runtime: let handlers read the new environment
        # Powertools reads the log level when a handler module is imported; locally, stdout
        # is the user's, so handlers speak only when something is wrong.
        logger = getattr(module.handler, "logger", None) or module.logger
        logger.setLevel(logging.WARNING)
    return {name: module.handler for name, module in modules.items()}


@dataclass
class LocalAws:
    dynamodb: Any
    s3: Any
    sfn: Any
    tables: dict[str, str]
    state_machine: str
    stream: str = USAGE_STREAM

    @property
    def ledgers(self) -> LedgerStore:
        return LedgerStore(self.dynamodb, self.tables[LEDGER_TABLE.env_var])

    @property
    def config(self) -> ConfigStore:
        return ConfigStore(self.dynamodb, self.tables[CONFIG_TABLE.env_var])

    @property
    def invoices(self) -> InvoiceStore:
        return InvoiceStore(self.dynamodb, self.tables[INVOICES_TABLE.env_var])

    def load(self, catalog: Catalog, accounts: Accounts) -> None:
        self.config.put_catalog(catalog)
        self.config.put_accounts(accounts)

    def run_invoices(self, name: str, run_input: dict[str, Any]) -> dict[str, Any]:
        """Run the invoice workflow to its end; its report."""
        execution = workflow.start(self.sfn, self.state_machine, name, run_input)
        return workflow.wait(self.sfn, execution)

    def sent_emails(self) -> list[bytes]:
        messages = ses_backends["123456789012"][REGION].sent_messages
        return [message.raw_data.encode() for message in messages]

    def object(self, bucket: str, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body


def register_stack(cloudformation: Any, outputs: dict[str, str]) -> None:
    """A stack whose outputs name the local resources, so that the command line finds them
    the way it finds a deployed stack's (it holds no resources of its own)."""
    template = {
        "Resources": {"Local": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    with warnings.catch_warnings():  # moto says it does not build that resource: none needed
        warnings.simplefilter("ignore", UserWarning)
        cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(template))


def _last_sequence_number(shard: Shard) -> int:
    # moto 5.2 lists a shard's whole record dict to find its last key on every put, which
    # makes putting n records cost n²; the dict is in insertion (= sequence) order.
    return next(reversed(shard.records), 0)


@contextmanager
def local_aws(extra_handlers: dict[str, Handler] | None = None) -> Iterator[LocalAws]:
    """A fresh local AWS with the project provisioned on it, for the time of the block."""
    # The interpreter logs every caught task failure at length; the run reports them.
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    saved = dict(os.environ)
    with ExitStack() as stack:
        try:
            os.environ.update(_FAKE_CREDENTIALS)
            stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
            stack.enter_context(
                mock.patch.object(Shard, "get_max_sequence_number", _last_sequence_number)
            )
            dynamodb = boto3.client("dynamodb", region_name=REGION)
            s3 = boto3.client("s3", region_name=REGION)
            tables = create_tables(dynamodb, PREFIX)
            for bucket in (QUARANTINE_BUCKET, INVOICE_BUCKET):
                s3.create_bucket(Bucket=bucket)
            boto3.client("events", region_name=REGION).create_event_bus(Name=EVENT_BUS)
            boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity=SENDER)
            os.environ.update(
                {
                    **tables,
                    QUARANTINE_BUCKET_ENV: QUARANTINE_BUCKET,
                    INVOICE_BUCKET_ENV: INVOICE_BUCKET,
                    EVENT_BUS_ENV: EVENT_BUS,
                    SENDER_ENV: SENDER,
                }
            )
            handlers = {**task_handlers(), **(extra_handlers or {})}
            create_functions(
                boto3.client("lambda", region_name=REGION),
                boto3.client("iam", region_name=REGION),
                list(handlers),
            )
            stack.enter_context(bridge(handlers))
            sfn = boto3.client("stepfunctions", region_name=REGION)
            state_machine = workflow.create_invoice_run(sfn)
            boto3.client("kinesis", region_name=REGION).create_stream(
                StreamName=USAGE_STREAM, ShardCount=1
            )
            register_stack(
                boto3.client("cloudformation", region_name=REGION),
                {
                    STACK_OUTPUTS.usage_stream_name: USAGE_STREAM,
                    STACK_OUTPUTS.ledger_table: tables[LEDGER_TABLE.env_var],
                    STACK_OUTPUTS.config_table: tables[CONFIG_TABLE.env_var],
                    STACK_OUTPUTS.invoices_table: tables[INVOICES_TABLE.env_var],
                    STACK_OUTPUTS.invoice_bucket: INVOICE_BUCKET,
                    STACK_OUTPUTS.quarantine_bucket: QUARANTINE_BUCKET,
                    STACK_OUTPUTS.invoice_state_machine: state_machine,
                    STACK_OUTPUTS.event_bus: EVENT_BUS,
                },
            )
            yield LocalAws(dynamodb, s3, sfn, tables, state_machine)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            task_handlers()  # forget services bound to this runtime's names
