"""What every construct shares, in one place: runtime, architecture, names, stage settings."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aws_cdk import Duration, RemovalPolicy, aws_lambda, aws_logs
from constructs import Node

from billing.core.seller import SellerSettings
from billing.settings import (
    DEFAULT_RUN_CONCURRENCY,
    INVOICE_STEP_TIMEOUT_SECONDS,
    MAX_AUTHORIZER_CACHE_SECONDS,
    MAX_RUN_CONCURRENCY,
    SPEND_ALERTS_TIMEOUT_SECONDS,
)

RUNTIME: Final = aws_lambda.Runtime.PYTHON_3_12
ARCHITECTURE: Final = aws_lambda.Architecture.ARM_64
# What the layer's wheels are built for: must agree with RUNTIME and ARCHITECTURE.
LAYER_PLATFORM: Final = "manylinux2014_aarch64"
LAYER_PYTHON_VERSION: Final = "3.12"

ROOT: Final = Path(__file__).resolve().parent.parent
LAYER_SOURCE: Final = ROOT / "layers" / "billing"
FUNCTIONS_SOURCE: Final = ROOT / "functions"

# The handlers' Powertools metrics (functions/rate_usage, functions/report_run).
METRICS_NAMESPACE: Final = "UsageBilling"
RATER_SERVICE: Final = "rate_usage"
INVOICE_RUN_SERVICE: Final = "invoice_run"

# The schedule's input: start_invoice_run names the run after the scheduled time.
SCHEDULE_INPUT: Final = '{"scheduled_time": "<aws.scheduler.scheduled-time>"}'


@dataclass(frozen=True, slots=True)
class FunctionSettings:
    """One Lambda function: its folder under functions/ and what it is given to run."""

    folder: str
    description: str
    memory_mb: int
    timeout: Duration


RATE_USAGE: Final = FunctionSettings(
    "rate_usage",
    "Rates a Kinesis batch of usage events into the accounts' ledgers",
    memory_mb=1024,
    timeout=Duration.minutes(2),
)
LIST_DUE: Final = FunctionSettings(
    "list_due",
    "Invoice run: writes the (account, period) pairs that are due to the run's manifest",
    memory_mb=1024,
    # Lambda's longest: a month-end list of a million accounts (docs/performance.md,
    # accounts_per_run_limit)
    timeout=Duration.minutes(15),
)
ISSUE_INVOICES: Final = FunctionSettings(
    "issue_invoices",
    "Invoice run: closes, numbers, builds, stores, announces and emails a batch of invoices",
    memory_mb=1536,  # PDF rendering with the CJK font is the heaviest work here
    # Stopped before the workflow's task timeout, so a retry never overlaps a live attempt.
    timeout=Duration.seconds(INVOICE_STEP_TIMEOUT_SECONDS),
)
SEND_INVOICES: Final = FunctionSettings(
    "send_invoices",
    "Invoice run: emails a batch of stored invoices, at most once each",
    memory_mb=512,
    timeout=Duration.seconds(INVOICE_STEP_TIMEOUT_SECONDS),
)
REPORT_RUN: Final = FunctionSettings(
    "report_run",
    "Invoice run: counts what the run issued, skipped, emailed and failed",
    memory_mb=1024,
    # one result per batch read from S3: 10,102 of them for a million accounts
    timeout=Duration.minutes(15),
)
EMAIL_EVENTS: Final = FunctionSettings(
    "email_events",
    "Records SES deliveries, bounces and complaints of invoice and correction emails on "
    "their records and publishes them",
    memory_mb=256,
    timeout=Duration.seconds(30),
)
START_INVOICE_RUN: Final = FunctionSettings(
    "start_invoice_run",
    "The schedule's target: starts the invoice run named after the scheduled time",
    memory_mb=256,
    timeout=Duration.seconds(30),
)


@dataclass(frozen=True, slots=True)
class ApiAccess:
    """Who may call the usage API (its resource policy, stacks/api.py)."""

    # IAM principal ARNs (operators' roles, a portal's role); none: this account's.
    principals: tuple[str, ...] = ()
    # An AWS Organizations id whose principals may call it too; none: no organization.
    organization: str | None = None


# Invoices are accounting records: kept unaltered this long (S3 Object Lock) by default.
PRODUCTION_INVOICE_RETENTION_DAYS: Final = 3653  # ten years
DEV_INVOICE_RETENTION_DAYS: Final = 1


@dataclass(frozen=True)  # no slots: from_context reads the defaults off the class
class Stage:
    """Settings that differ between deployments, read from CDK context (`-c stage=prod`).

    Every field has a safe default, so `cdk deploy` with no context deploys a working `dev`.
    """

    name: str = "dev"
    # None: an on-demand stream (scales by itself); a number: that many provisioned shards.
    # On-demand bills each record as 1 KiB, in, read by each of the two consumers and kept:
    # at a steady rate the pipeline costs 1.2x (10 events/s), 1.8x (1,000/s) and 2.6x
    # (10,000/s) per million events what it costs on provisioned shards
    # (bench/stream_cost.py). Once the peak rate is known, set ceil(peak / 1,000) shards,
    # unless the peak is over about 17 times the average (20 at 100 events/s, 100 at 10):
    # docs/performance.md, "The stream's mode".
    stream_shards: int | None = None
    # Concurrent batches per shard; Lambda keeps each partition key (account) in order.
    parallelization_factor: int = 2
    # When the invoice run starts; hourly, on the hour, in UTC.
    invoice_run_schedule: str = "cron(0 * * * ? *)"
    # Where alarms are emailed, if anywhere (the SNS topic is there either way).
    alarm_email: str | None = None
    # Rate of rejected records, in percent of the records a minute brings, that alarms.
    rejected_percent_alarm: float = 5.0
    # The oldest unread record a stream consumer may leave behind before it alarms.
    iterator_age_alarm_seconds: int = 300
    # Spend alert amounts per currency, as JSON ({"USD": ["100", "1000"]}); none by default.
    spend_alert_thresholds: str | None = None
    # The seller printed on invoices (legal name, address, tax ID, payment instructions,
    # payment terms), as JSON checked by billing.core.seller.SellerSettings; defaults when unset.
    seller: str | None = None
    # Who may call the usage API.
    api_access: ApiAccess = ApiAccess()
    # How long an issued invoice document cannot be overwritten nor deleted (Object Lock);
    # None: ten years in prod, a day elsewhere (so a dev stack can still be torn down).
    invoice_retention_days: int | None = None
    # Batches of the invoice run issued side by side (its Distributed Map's MaxConcurrency;
    # SES's send rate is shared among them: docs/invoicing.md).
    invoice_run_concurrency: int = DEFAULT_RUN_CONCURRENCY
    # The SES account's maximum send rate (emails/s) the invoice run paces by; None: the
    # Issue and Send functions read it from SES (GetAccount). Set it to keep part of the
    # account's rate for other senders.
    ses_max_send_rate: float | None = None
    # How long API Gateway keeps the customer authorizer's answer for one credential: how
    # long a revoked key may still be let in (0 to 60 seconds).
    customer_authorizer_cache_seconds: int = MAX_AUTHORIZER_CACHE_SECONDS

    @classmethod
    def from_context(cls, node: Node) -> Stage:
        """The stage from `-c stage=... -c stream_shards=...`; absent keys keep defaults."""
        name = str(node.try_get_context("stage") or cls.name)
        if not name.isalnum():
            raise ValueError(f"stage must be letters and digits, got {name!r}")
        shards = _optional_int(node.try_get_context("stream_shards"), "stream_shards")
        factor = _optional_int(node.try_get_context("parallelization_factor"), "parallelization")
        schedule = node.try_get_context("invoice_run_schedule")
        email = node.try_get_context("alarm_email")
        rejected = node.try_get_context("rejected_percent_alarm")
        thresholds = node.try_get_context("spend_alert_thresholds")
        seller = node.try_get_context("seller")
        if isinstance(seller, dict):
            seller = json.dumps(seller, ensure_ascii=False)
        if seller:
            SellerSettings.parse(seller)  # a bad setting stops the synth, with the field
        organization = node.try_get_context("usage_api_organization")
        retention = _optional_int(
            node.try_get_context("invoice_retention_days"), "invoice_retention_days"
        )
        concurrency = _optional_int(
            node.try_get_context("invoice_run_concurrency"), "invoice_run_concurrency"
        )
        if concurrency is not None and not 1 <= concurrency <= MAX_RUN_CONCURRENCY:
            raise ValueError(f"invoice_run_concurrency must be 1 to {MAX_RUN_CONCURRENCY}")
        send_rate = _optional_rate(node.try_get_context("ses_max_send_rate"), "ses_max_send_rate")
        cache = _cache_seconds(node.try_get_context("customer_authorizer_cache_seconds"))
        return cls(
            name=name,
            stream_shards=shards,
            parallelization_factor=factor or cls.parallelization_factor,
            invoice_run_schedule=str(schedule) if schedule else cls.invoice_run_schedule,
            alarm_email=str(email) if email else None,
            rejected_percent_alarm=float(rejected) if rejected else cls.rejected_percent_alarm,
            # cdk.json may hold the setting as an object, the command line as JSON text
            spend_alert_thresholds=(
                json.dumps(thresholds) if isinstance(thresholds, dict) else thresholds or None
            ),
            seller=str(seller) if seller else None,
            api_access=ApiAccess(
                principals=_principal_arns(node.try_get_context("usage_api_principals")),
                organization=str(organization) if organization else None,
            ),
            invoice_retention_days=retention,
            invoice_run_concurrency=concurrency or DEFAULT_RUN_CONCURRENCY,
            ses_max_send_rate=send_rate,
            customer_authorizer_cache_seconds=cache,
        )

    @property
    def is_production(self) -> bool:
        return self.name == "prod"

    @property
    def removal_policy(self) -> RemovalPolicy:
        """What happens to stores when the stack goes: production keeps its data."""
        return RemovalPolicy.RETAIN if self.is_production else RemovalPolicy.DESTROY

    @property
    def invoice_retention(self) -> Duration:
        if self.invoice_retention_days is not None:
            return Duration.days(self.invoice_retention_days)
        return Duration.days(
            PRODUCTION_INVOICE_RETENTION_DAYS if self.is_production else DEV_INVOICE_RETENTION_DAYS
        )

    @property
    def log_retention(self) -> aws_logs.RetentionDays:
        return (
            aws_logs.RetentionDays.ONE_YEAR
            if self.is_production
            else aws_logs.RetentionDays.ONE_MONTH
        )


# Roles and users only: the API's Deny matches aws:PrincipalArn, which for a session is its
# role's ARN (never the session's) and is never an account root for a role or user.
_PRINCIPAL_ARN: Final = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$")


def _principal_arns(value: Any) -> tuple[str, ...]:
    """IAM principal ARNs from a JSON list (cdk.json) or comma-separated text (-c)."""
    if value is None or value == "":
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    arns = tuple(str(item).strip() for item in items if str(item).strip())
    for arn in arns:
        if not _PRINCIPAL_ARN.match(arn):
            raise ValueError(f"usage_api_principals: {arn!r} is not the ARN of an IAM role or user")
    return arns


def _optional_rate(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    rate = float(value)
    if not 0 < rate < float("inf"):
        raise ValueError(f"{name} must be a number of emails per second above 0, got {value!r}")
    return rate


def _cache_seconds(value: Any) -> int:
    """The customer authorizer's cache time: 0 (no cache) to 60 seconds."""
    if value is None or value == "":
        return MAX_AUTHORIZER_CACHE_SECONDS
    seconds = int(value)
    if not 0 <= seconds <= MAX_AUTHORIZER_CACHE_SECONDS:
        raise ValueError(
            f"customer_authorizer_cache_seconds must be 0 to {MAX_AUTHORIZER_CACHE_SECONDS} "
            f"(a revoked key is let in for at most that long), got {seconds}"
        )
    return seconds


def _optional_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    number = int(value)
    if number < 1:
        raise ValueError(f"{name} must be at least 1, got {number}")
    return number


# The usage stream and its consumer. Records stay on the stream a week, so a batch that
# reached the failure destination can still be read back (and replayed) from the stream.
STREAM_RETENTION: Final = Duration.days(7)
# Bounded retries: a poisoned batch is split (bisect) and retried this often, then goes to
# the failure destination instead of blocking its shard.
RATER_RETRY_ATTEMPTS: Final = 10
RATER_MAX_RECORD_AGE: Final = Duration.days(1)

ARCHIVE_RECORDS: Final = FunctionSettings(
    "archive_records",
    "Firehose processor: frames each usage record as one line of the raw archive",
    memory_mb=256,
    # Firehose waits at most 5 minutes for its processor; a buffer of 1 MB takes well under.
    timeout=Duration.minutes(1),
)
# What Firehose hands the processor at a time: 1 MB in, at most 1.8 MB out (base64 and
# the frame's fields, base64 again in the answer), under Lambda's 6 MB answer limit.
ARCHIVE_PROCESSOR_BUFFER_MB: Final = 1
ARCHIVE_PROCESSOR_BUFFER_SECONDS: Final = 60

WAREHOUSE_RECORDS: Final = FunctionSettings(
    "warehouse_records",
    "Firehose processor: turns each usage record into its row of the warehouse's raw_usage",
    memory_mb=256,
    timeout=Duration.minutes(1),
)
WAREHOUSE_ROWS: Final = FunctionSettings(
    "warehouse_rows",
    "Puts the rows of each new invoice and quarantine document to the warehouse's streams",
    memory_mb=256,
    timeout=Duration.minutes(1),
)
# Record format conversion needs a buffer of at least 64 MB; the longest interval Firehose
# allows keeps the table's files few and large.
WAREHOUSE_BUFFER_MB: Final = 64
WAREHOUSE_BUFFER_SECONDS: Final = 900

USAGE_API: Final = FunctionSettings(
    "usage_api",
    "The usage API: an account's usage, running charges and invoices",
    memory_mb=1024,
    timeout=Duration.seconds(29),  # API Gateway's own integration limit
)
# Requests per second (steady, burst) for the whole usage API stage.
USAGE_API_THROTTLE: Final = (50, 100)

OPERATOR_API: Final = FunctionSettings(
    "operator_api",
    "The usage API's operator routes: the accounts and the catalog, written on their version",
    memory_mb=1024,
    timeout=Duration.seconds(29),  # API Gateway's own integration limit
)

CUSTOMER_API: Final = FunctionSettings(
    "customer_api",
    "The customer API: an account's own usage, charges, invoices and thresholds",
    memory_mb=1024,
    timeout=Duration.seconds(29),  # API Gateway's own integration limit
)
CUSTOMER_AUTHORIZER: Final = FunctionSettings(
    "customer_authorizer",
    "The customer API's authorizer: a customer key or portal link into its account",
    memory_mb=256,  # one GetItem and a hash per credential
    timeout=Duration.seconds(10),
)
# Requests per second (steady, burst): each customer key (its usage plan's throttle), and
# the whole customer API stage, which all keys share.
CUSTOMER_KEY_THROTTLE: Final = (10, 20)
CUSTOMER_API_THROTTLE: Final = (100, 200)

SPEND_ALERTS: Final = FunctionSettings(
    "spend_alerts",
    "Publishes SpendThresholdCrossed when an account's running charges reach a threshold",
    memory_mb=512,
    timeout=Duration.seconds(SPEND_ALERTS_TIMEOUT_SECONDS),
)
# The ledger stream keeps records a day; a batch still failing after these goes to the
# alerts' failure queue (alarmed) instead of holding back the alerts behind it.
SPEND_ALERTS_RETRY_ATTEMPTS: Final = 10
SPEND_ALERTS_MAX_RECORD_AGE: Final = Duration.hours(6)

# Webhooks (docs/webhooks.md): each POST waits at most billing.webhooks.delivery's timeout,
# one message at a time, so a message to a few slow endpoints fits the function's time; the
# queue hides a message in flight for longer than that (Lambda requires it).
DELIVER_WEBHOOKS: Final = FunctionSettings(
    "deliver_webhooks",
    "Delivers domain events to the registered webhook endpoints, signed",
    memory_mb=256,
    timeout=Duration.minutes(2),
)
WEBHOOK_QUEUE_VISIBILITY: Final = Duration.minutes(3)
