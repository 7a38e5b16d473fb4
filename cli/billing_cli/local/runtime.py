"""The embedded local runtime: the whole pipeline on moto, in this process.

moto runs in-process (`mock_aws`, the faster: no HTTP) or, when another process must reach
it (`billing local`), as a server on 127.0.0.1; everything else is the same. `LocalAws`
provisions, from the same declarations the stack uses, the tables, buckets,
event bus, SES sender, Lambda functions (run by the bridge) and the invoice state machine
(from the same ASL file), and points the handlers at them through their environment.
Nothing is kept between runs.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from unittest import mock

import boto3
from moto import mock_aws
from moto.core.config import DefaultConfig
from moto.kinesis.models import Shard
from moto.ses.models import ses_backends

from billing import wiring
from billing.core.catalog import Accounts, Catalog
from billing.invoicing.due_index import DueIndex
from billing.operator.config_api import OperatorConfig
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
    STACK_NAME_PREFIX,
    STACK_OUTPUTS,
    RatingSettings,
)
from billing.store.clock_parameter import ClockParameter
from billing.store.config_store import ConfigStore
from billing.store.due_hints import DueHints
from billing.store.invocations import FunctionInvoker
from billing.store.invoice_store import InvoiceStore
from billing.store.ledger_store import LedgerStore
from billing_cli.deployment import LOCAL_RUNTIME_OUTPUT
from billing_cli.local import workflow
from billing_cli.local.customer_local import LocalCustomerApi, local_customer_api
from billing_cli.local.esm import Invoke, MappingSettings, ShardPoller
from billing_cli.local.firehose import ARCHIVE_RECORDS, LocalFirehose
from billing_cli.local.lambdas import CURRENT_STDERR, Handler, bridge, create_functions
from billing_cli.local.ledger_stream import SPEND_ALERTS, LedgerStreamPoller
from billing_cli.local.provision import create_tables
from billing_cli.local.server import LocalServer
from billing_cli.local.webhooks import WebhookPoller, provision_webhooks
from billing_cli.operations import TEST_CLOCK_OUTPUT
from billing_cli.operator_client import OPERATOR_FUNCTION_OUTPUT
from functions.archive_records import app as archive_records
from functions.issue_invoices import app as issue_invoices
from functions.list_due import app as list_due
from functions.operator_api import app as operator_api
from functions.rate_usage import app as rate_usage
from functions.report_run import app as report_run
from functions.send_invoices import app as send_invoices
from functions.spend_alerts import app as spend_alerts

REGION: Final = "us-east-1"
PREFIX: Final = "billing-local"
SENDER: Final = "invoices@billing.local"
EVENT_BUS: Final = f"{PREFIX}-events"
QUARANTINE_BUCKET: Final = f"{PREFIX}-quarantine"
ARCHIVE_BUCKET: Final = f"{PREFIX}-archive"
INVOICE_BUCKET: Final = f"{PREFIX}-invoices"
RUN_BUCKET: Final = f"{PREFIX}-invoice-runs"
USAGE_STREAM: Final = f"{PREFIX}-usage"
STACK: Final = f"{STACK_NAME_PREFIX}-local"
# moto's SES has no send quota (nor GetAccount): locally, batches send as fast as they can.
LOCAL_SES_MAX_SEND_RATE: Final = "1000000"
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


RATE_USAGE: Final = "rate_usage"
OPERATOR_API: Final = "operator_api"


def _rate_usage(event: dict[str, Any], context: Any) -> Any:
    try:
        return rate_usage.handler(event, context)
    finally:
        # With metrics off (locally), Powertools keeps them instead of printing: drop them.
        rate_usage.metrics.clear_metrics()


def _spend_alerts(event: dict[str, Any], context: Any) -> Any:
    try:
        return spend_alerts.handler(event, context)
    finally:
        spend_alerts.metrics.clear_metrics()  # as rate_usage's, kept with metrics off


def task_handlers() -> dict[str, Handler]:
    """The project's functions, by name, as deployed: the rater, spend alerts, the
    invoice workflow's tasks and the operator API's function (which `billing accounts
    list|show` invoke here, API Gateway having no local stand-in for its IAM routes)."""
    rate_usage.service.cache_clear()
    rate_usage.logger.setLevel(logging.WARNING)
    operator_api.service.cache_clear()
    spend_alerts.service.cache_clear()
    spend_alerts.logger.setLevel(logging.WARNING)
    modules = {
        "list_due": list_due,
        "issue_invoices": issue_invoices,
        "send_invoices": send_invoices,
        "report_run": report_run,
        OPERATOR_API: operator_api,
    }
    for module in modules.values():
        service = getattr(module.handler, "service", None)
        if service is not None:
            service.cache_clear()  # a fresh runtime: let handlers read the new environment
        # Powertools reads the log level when a handler module is imported; locally, stdout
        # is the user's (the command's output), so handlers speak only when something is
        # wrong, and on stderr.
        logger = getattr(module.handler, "logger", None) or module.logger
        logger.setLevel(logging.WARNING)
        handler = logger.registered_handler
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(CURRENT_STDERR)
    archive_records.logger.setLevel(logging.WARNING)
    handlers: dict[str, Handler] = {
        RATE_USAGE: _rate_usage,
        SPEND_ALERTS: _spend_alerts,
        ARCHIVE_RECORDS: archive_records.handler,
    }
    return handlers | {name: module.handler for name, module in modules.items()}


def invoke_function(lambda_client: Any, name: str) -> Invoke:
    """Invoke a function through Lambda's API, as the event source mapping does; a function
    error raises (FunctionFailed), which is what the mapping retries and bisects on."""
    function = FunctionInvoker(lambda_client, name)

    def invoke(event: dict[str, Any]) -> dict[str, Any] | None:
        payload = function.call(event)
        return payload if isinstance(payload, dict) else None

    return invoke


@dataclass
class LocalAws:
    dynamodb: Any
    s3: Any
    sfn: Any
    tables: dict[str, str]
    state_machine: str
    stream: str = USAGE_STREAM
    endpoint_url: str | None = None  # the server's, when moto runs as one
    customer_api: LocalCustomerApi | None = None  # its key table, usage plan and gateway
    webhook_queue: str = ""  # the queue the bus's rule puts webhook events on

    @property
    def ledgers(self) -> LedgerStore:
        return LedgerStore(self.dynamodb, self.tables[LEDGER_TABLE.env_var])

    @property
    def config(self) -> ConfigStore:
        return ConfigStore(self.dynamodb, self.tables[CONFIG_TABLE.env_var])

    @property
    def invoices(self) -> InvoiceStore:
        return InvoiceStore(self.dynamodb, self.tables[INVOICES_TABLE.env_var])

    @property
    def due_index(self) -> DueIndex:
        hints = DueHints(self.dynamodb, self.tables[LEDGER_TABLE.env_var])
        return DueIndex(hints=hints, invoices=self.invoices)

    def load(self, catalog: Catalog, accounts: Accounts, now: datetime | None = None) -> None:
        """Store the catalog and the accounts as `billing catalog push` and `billing
        accounts push` do, the accounts' due hints at `now` (default: the real time)."""
        self.config.put_catalog(catalog)
        self.due_index.pushed([], accounts.accounts, now or datetime.now(UTC))
        self.config.put_accounts(accounts)

    def run_invoices(self, name: str, run_input: dict[str, Any]) -> dict[str, Any]:
        """Run the invoice workflow to its end; its report."""
        execution = workflow.start(self.sfn, self.state_machine, name, run_input)
        return workflow.wait(self.sfn, execution)

    def sent_emails(self) -> list[bytes]:
        messages = ses_backends["123456789012"][REGION].sent_messages
        return [message.raw_data.encode() for message in messages]

    def pollers(self, settings: MappingSettings) -> list[ShardPoller]:
        """One event source mapping poller per shard, invoking rate_usage through Lambda
        (so it runs one at a time with the workflow's tasks; see lambdas.py)."""
        kinesis = boto3.client("kinesis", region_name=REGION)
        invoke = invoke_function(boto3.client("lambda", region_name=REGION), RATE_USAGE)
        shards = kinesis.list_shards(StreamName=self.stream)["Shards"]
        return [
            ShardPoller(kinesis, self.stream, shard["ShardId"], invoke, settings)
            for shard in shards
        ]

    def alert_poller(self) -> LedgerStreamPoller:
        """The ledger table's stream into spend_alerts (invoked through Lambda, one at a
        time with the other functions), as the stack's event source mapping does."""
        table = self.tables[LEDGER_TABLE.env_var]
        arn = self.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        invoke = invoke_function(boto3.client("lambda", region_name=REGION), SPEND_ALERTS)
        return LedgerStreamPoller(boto3.client("dynamodbstreams", region_name=REGION), arn, invoke)

    def webhook_poller(self) -> WebhookPoller:
        """The webhook queue into the deliverer (docs/webhooks.md), as deliver_webhooks'
        event source does."""
        return WebhookPoller.on(REGION, self.webhook_queue, self.tables[CONFIG_TABLE.env_var])

    def firehose(self) -> LocalFirehose:
        """The raw archive's delivery stream (firehose.py): the stream's records framed by
        archive_records (invoked through Lambda) into the archive bucket."""
        return LocalFirehose(
            kinesis=boto3.client("kinesis", region_name=REGION),
            s3=self.s3,
            stream=self.stream,
            bucket=ARCHIVE_BUCKET,
            process=invoke_function(boto3.client("lambda", region_name=REGION), ARCHIVE_RECORDS),
        )

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


# moto's shard is not safe for a put and a read at once (the server serves each request on
# its own thread), and it reads by scanning every record from the first. Its sequence
# numbers are consecutive integers, so a read can go straight to the next ones.
_SHARD_LOCK: Final = threading.Lock()
_moto_put_record: Final = Shard.put_record


def _put_record(shard: Shard, partition_key: str, data: str, explicit_hash_key: str) -> str:
    with _SHARD_LOCK:
        return str(_moto_put_record(shard, partition_key, data, explicit_hash_key))


def _get_records(
    shard: Shard, last_sequence_id: str, limit: int | None
) -> tuple[list[Any], int, int]:
    with _SHARD_LOCK:
        last = int(last_sequence_id)
        newest = _last_sequence_number(shard)
        wanted = range(last + 1, min(newest, last + (limit or 10_000)) + 1)
        records = [shard.records[sequence] for sequence in wanted]
        if not records:
            return [], last, 0
        behind = shard.records[newest].created_at - records[-1].created_at
        return records, records[-1].sequence_number, int(behind * 1000)


_MOTO_CONFIG: Final[DefaultConfig] = {"stepfunctions": {"execute_state_machine": True}}


def _serve(stack: ExitStack, port: int) -> str:
    """moto as a server on 127.0.0.1 (port 0: a free one); its endpoint URL. It shares this
    process's moto state, which is reset when it starts and when it stops."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    server = LocalServer(port)  # 127.0.0.1 only; a taken port raises OSError here
    server.start()
    stack.callback(server.stop)
    bound = server.port
    endpoint = server.endpoint_url
    # The Step Functions interpreter calls back to the server's port to invoke functions.
    os.environ.update({"AWS_ENDPOINT_URL": endpoint, "MOTO_PORT": str(bound)})
    _moto_api(endpoint, "reset")
    stack.callback(_moto_api, endpoint, "reset")
    _moto_api(endpoint, "config", _MOTO_CONFIG)
    return endpoint


def _moto_api(endpoint: str, action: str, body: Any = None) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/{action}",
        data=json.dumps(body or {}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


TEST_CLOCK: Final = f"/{PREFIX}/test-clock"


def clock_parameter() -> ClockParameter:
    """The test clock's parameter, on whichever endpoint the process uses."""
    return ClockParameter(boto3.client("ssm", region_name=REGION), TEST_CLOCK)


def read_clock() -> datetime:
    """The test clock's time, from its parameter."""
    return clock_parameter().now()


@contextmanager
def _rating_on_test_clock(clock: datetime) -> Iterator[None]:
    """The test clock, like Stripe's: a parameter the rater reads as its now (so events are
    judged future or not by it), and the default clock of invoice runs started by hand
    (`billing invoices run` finds it by the stack output). `billing clock advance` moves it."""
    clock_parameter().set(clock)
    build = wiring.rating_service
    operator_config = wiring.operator_config

    def on_test_clock(settings: RatingSettings | None = None) -> RatingService:
        service = build(settings)
        service._clock = read_clock  # the one seam RatingService offers
        return service

    def operator_on_test_clock() -> OperatorConfig:
        # A write through the operator API is judged at the clock a push is (run_clock).
        return operator_config(clock=read_clock)

    with (
        mock.patch.object(wiring, "rating_service", on_test_clock),
        mock.patch.object(operator_api, "service", functools.cache(operator_on_test_clock)),
    ):
        rate_usage.service.cache_clear()
        yield
    rate_usage.service.cache_clear()


@contextmanager
def local_aws(
    extra_handlers: dict[str, Handler] | None = None,
    *,
    server_port: int | None = None,
    clock: datetime | None = None,
    customer_api_port: int | None = None,
) -> Iterator[LocalAws]:
    """A fresh local AWS with the project provisioned on it, for the time of the block;
    moto in-process, or as a server on `server_port` (0: any free port) if one is given;
    on a test clock starting at `clock` if one is given (see `_rating_on_test_clock`); the
    customer API's gateway served on `customer_api_port` if one is given."""
    # The interpreter logs every caught task failure at length; the run reports them.
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    saved = dict(os.environ)
    with ExitStack() as stack:
        try:
            os.environ.update(_FAKE_CREDENTIALS)
            endpoint = _start_moto(stack, server_port)
            aws = _provision(stack, extra_handlers or {}, endpoint)
            outputs = _stack_outputs(aws)
            aws.customer_api = stack.enter_context(
                local_customer_api(
                    REGION,
                    PREFIX,
                    port=customer_api_port,
                    clock=read_clock if clock is not None else None,
                )
            )
            outputs.update(aws.customer_api.outputs())
            if clock is not None:
                stack.enter_context(_rating_on_test_clock(clock))
                outputs = {TEST_CLOCK_OUTPUT: TEST_CLOCK, **outputs}
            register_stack(boto3.client("cloudformation", region_name=REGION), outputs)
            yield aws
        finally:
            os.environ.clear()
            os.environ.update(saved)
            task_handlers()  # forget services bound to this runtime's names


def _start_moto(stack: ExitStack, server_port: int | None) -> str | None:
    """moto for the time of `stack`, in-process or served on `server_port`, with the shard
    patches above; the server's endpoint URL, or None in-process."""
    endpoint = None
    if server_port is None:
        stack.enter_context(mock_aws(config=_MOTO_CONFIG))
    else:
        endpoint = _serve(stack, server_port)
    stack.enter_context(mock.patch.object(Shard, "get_max_sequence_number", _last_sequence_number))
    stack.enter_context(mock.patch.object(Shard, "put_record", _put_record))
    stack.enter_context(mock.patch.object(Shard, "get_records", _get_records))
    return endpoint


def _provision(
    stack: ExitStack, extra_handlers: dict[str, Handler], endpoint: str | None
) -> LocalAws:
    """The project's resources on the running moto, its functions bridged to the handlers
    for the time of `stack`, and the handlers' environment naming the resources."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    tables = create_tables(dynamodb, PREFIX)
    for bucket in (QUARANTINE_BUCKET, INVOICE_BUCKET, RUN_BUCKET, ARCHIVE_BUCKET):
        s3.create_bucket(Bucket=bucket)
    boto3.client("events", region_name=REGION).create_event_bus(Name=EVENT_BUS)
    webhook_queue = provision_webhooks(REGION, PREFIX, EVENT_BUS)
    boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity=SENDER)
    os.environ.update(
        {
            **tables,
            QUARANTINE_BUCKET_ENV: QUARANTINE_BUCKET,
            INVOICE_BUCKET_ENV: INVOICE_BUCKET,
            RUN_BUCKET_ENV: RUN_BUCKET,
            EVENT_BUS_ENV: EVENT_BUS,
            SENDER_ENV: SENDER,
            SES_MAX_SEND_RATE_ENV: LOCAL_SES_MAX_SEND_RATE,
        }
    )
    handlers = {**task_handlers(), **extra_handlers}
    create_functions(
        boto3.client("lambda", region_name=REGION),
        boto3.client("iam", region_name=REGION),
        list(handlers),
    )
    stack.enter_context(bridge(handlers))
    sfn = boto3.client("stepfunctions", region_name=REGION)
    state_machine = workflow.create_invoice_run(sfn, RUN_BUCKET)
    boto3.client("kinesis", region_name=REGION).create_stream(StreamName=USAGE_STREAM, ShardCount=1)
    return LocalAws(
        dynamodb, s3, sfn, tables, state_machine, endpoint_url=endpoint, webhook_queue=webhook_queue
    )


def _stack_outputs(aws: LocalAws) -> dict[str, str]:
    """The outputs a deployed stack would have, naming the local resources."""
    return {
        STACK_OUTPUTS.usage_stream_name: aws.stream,
        STACK_OUTPUTS.ledger_table: aws.tables[LEDGER_TABLE.env_var],
        STACK_OUTPUTS.config_table: aws.tables[CONFIG_TABLE.env_var],
        STACK_OUTPUTS.invoices_table: aws.tables[INVOICES_TABLE.env_var],
        STACK_OUTPUTS.invoice_bucket: INVOICE_BUCKET,
        STACK_OUTPUTS.quarantine_bucket: QUARANTINE_BUCKET,
        STACK_OUTPUTS.archive_bucket: ARCHIVE_BUCKET,
        STACK_OUTPUTS.invoice_state_machine: aws.state_machine,
        STACK_OUTPUTS.send_invoices_function: "send_invoices",
        STACK_OUTPUTS.event_bus: EVENT_BUS,
        OPERATOR_FUNCTION_OUTPUT: OPERATOR_API,
        LOCAL_RUNTIME_OUTPUT: "billing local",
    }
