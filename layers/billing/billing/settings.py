"""The resources the project's code and its infrastructure share, declared once.

The CDK stack creates them from these declarations, the local runtime provisions them from
the same ones, and handlers find them through the environment variables named here, read
at cold start into the settings models at the end of this module (pydantic-settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final, Self

from pydantic import (
    BeforeValidator,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """A global secondary index: string keys, and the attributes it carries besides them."""

    name: str
    partition_key: str
    sort_key: str
    projected: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TableSpec:
    construct_id: str
    env_var: str
    partition_key: str = "pk"
    sort_key: str = "sk"
    ttl_attribute: str | None = None
    stream: bool = False
    indexes: tuple[IndexSpec, ...] = ()


# The accounts' due hints by shard and due time (billing.store.due_hints): sparse, only the
# hint items carry its keys, so an hourly invoice run reads only what is due.
DUE_INDEX: Final = IndexSpec("due", "due_shard", "due_at", projected=("due_period",))
# Account ledgers (aggregates, running charges, dedupe state), spilled id chunks, archives,
# due hints.
LEDGER_TABLE: Final = TableSpec(
    "Ledger", "LEDGER_TABLE", ttl_attribute="expires_at", stream=True, indexes=(DUE_INDEX,)
)
# The catalog and the accounts, as validated documents.
CONFIG_TABLE: Final = TableSpec("Config", "CONFIG_TABLE")
# Invoice records and the issuer's invoice-number sequence.
INVOICES_TABLE: Final = TableSpec("Invoices", "INVOICES_TABLE")

QUARANTINE_BUCKET_ENV: Final = "QUARANTINE_BUCKET"
INVOICE_BUCKET_ENV: Final = "INVOICE_BUCKET"
# The warehouse's delivery streams, one per table its feed writes (docs/warehouse.md).
WAREHOUSE_STREAM_ENVS: Final = {
    "invoices": "WAREHOUSE_INVOICES_STREAM",
    "invoice_lines": "WAREHOUSE_INVOICE_LINES_STREAM",
    "corrections": "WAREHOUSE_CORRECTIONS_STREAM",
    "correction_lines": "WAREHOUSE_CORRECTION_LINES_STREAM",
    "daily_usage": "WAREHOUSE_DAILY_USAGE_STREAM",
    "rejected_records": "WAREHOUSE_REJECTED_RECORDS_STREAM",
}
INVOICE_KEY_ENV: Final = "INVOICE_KMS_KEY_ID"  # SSE-KMS key for invoice documents
EVENT_BUS_ENV: Final = "EVENT_BUS_NAME"
SENDER_ENV: Final = "SENDER_EMAIL"
# The seller printed on invoices, as JSON (billing.core.seller.SellerSettings; CDK context
# `seller`).
SELLER_ENV: Final = "INVOICE_SELLER"
SES_CONFIGURATION_SET_ENV: Final = "SES_CONFIGURATION_SET"
GRACE_ENV: Final = "INVOICE_GRACE_SECONDS"
# The invoice run's working files (manifests, batch results, reports).
RUN_BUCKET_ENV: Final = "INVOICE_RUN_BUCKET"
STATE_MACHINE_ENV: Final = "INVOICE_RUN_STATE_MACHINE_ARN"
USAGE_STREAM_ENV: Final = "USAGE_STREAM"
# How many of the run's batches are issued and send email at once (ListDue gives it to the
# Distributed Map as its MaxConcurrency; Issue and Send share SES's rate by it), and, when
# set, SES's maximum send rate for the account (emails per second) instead of reading it
# from SES (GetAccount).
RUN_CONCURRENCY_ENV: Final = "INVOICE_RUN_CONCURRENCY"
SES_MAX_SEND_RATE_ENV: Final = "SES_MAX_SEND_RATE"
# spend_alerts: JSON of alert amounts per currency, e.g. {"USD": ["100", "1000"]}.
SPEND_ALERT_THRESHOLDS_ENV: Final = "SPEND_ALERT_THRESHOLDS"

# spend_alerts only needs ledger items: the event source mapping's filter drops id chunks,
# archives and alert claims before they cost an invocation (the handler ignores them too).
SPEND_ALERTS_STREAM_FILTER: Final = {"dynamodb": {"Keys": {"sk": {"S": ["LEDGER"]}}}}

TABLES: Final = (LEDGER_TABLE, CONFIG_TABLE, INVOICES_TABLE)

# Customer API keys and portal links (billing.store.api_keys), one item per key id. Not one
# of TABLES: the customer API's construct owns it (stacks/customer_api.py), and only the
# authorizer and the command line use it. The index lists an account's keys, carrying what
# a list shows and never the secret's hash. Expired portal links are purged after a while
# (`purge_at`, TTL); the authorizer refuses them at `expires_at` whatever the TTL did.
ACCOUNT_KEYS_INDEX: Final = IndexSpec(
    "account",
    "account_id",
    "created_at",
    projected=("key_id", "key_name", "kind", "revoked_at", "expires_at"),
)
CUSTOMER_KEYS_TABLE: Final = TableSpec(
    "CustomerKeys", "CUSTOMER_KEYS_TABLE", ttl_attribute="purge_at", indexes=(ACCOUNT_KEYS_INDEX,)
)
# How long API Gateway keeps the customer authorizer's answer for one Authorization header,
# which is also how long a revoked key may still be let in (docs/customer-access.md): the
# stack's setting, at most a minute; the authorizer reads it to refuse a portal link that
# would expire while its answer is kept.
AUTHORIZER_CACHE_ENV: Final = "AUTHORIZER_CACHE_SECONDS"
MAX_AUTHORIZER_CACHE_SECONDS: Final = 60

# The invoice workflow's Issue and Send functions' timeout. A step handles one batch of up
# to 99 invoices one after another, about 100-200 ms each on AWS (a few DynamoDB and S3
# calls, SES, the PDF), so 10-20 s a batch; an invoice whose names need the embedded CJK
# fonts renders in about 1-1.5 s (docs/invoice-document.md), so a batch of only those takes
# about 100-170 s. Emails go at the batch's share of SES's rate (70 s for 99 at 14/s
# shared by 10 batches), and a step starts none past its deadline (the time left less
# EMAIL_DEADLINE_MARGIN_SECONDS): what is left goes to Send, or to the next run. 300 s covers
# that with room for throttling backoff. The workflow's Task TimeoutSeconds is 30 s above
# it (invoice_run.asl.json), so a timed-out function has stopped before it is retried.
INVOICE_STEP_TIMEOUT_SECONDS: Final = 300
SPEND_ALERTS_TIMEOUT_SECONDS: Final = 60
# A customer alert's email claimed `sending` (billing.customer.customer_alerts) longer ago
# than this was claimed by an attempt that has stopped, at its timeout at the latest; a
# minute of margin for the clocks of two functions, as EMAIL_CLAIM_LEASE_SECONDS.
ALERT_EMAIL_LEASE_SECONDS: Final = SPEND_ALERTS_TIMEOUT_SECONDS + 60
INVOICE_TASK_TIMEOUT_SECONDS: Final = INVOICE_STEP_TIMEOUT_SECONDS + 30
# An email claim (billing.invoicing.delivery) older than this belongs to a step that has
# stopped: the function that made it was stopped at its timeout at the latest. A minute of
# margin for the clocks of two functions.
EMAIL_CLAIM_LEASE_SECONDS: Final = INVOICE_STEP_TIMEOUT_SECONDS + 60

# Batches of the invoice run (the Distributed Map's items) processed at once, unless
# INVOICE_RUN_CONCURRENCY says otherwise (at most MAX_RUN_CONCURRENCY, the most child
# executions a Distributed Map runs at once). They share the account's SES send rate: each
# batch sends at max rate / concurrency (docs/invoicing.md, Email at SES's pace).
DEFAULT_RUN_CONCURRENCY: Final = 10
MAX_RUN_CONCURRENCY: Final = 10_000
# When SES's quota can be read neither from the setting nor from SES (GetAccount refused),
# batches share the lowest rate SES grants (the sandbox's, 1 email/s): slow, never throttled.
SES_FALLBACK_SEND_RATE: Final = 1.0
# An Issue or Send step starts no email this close to its function's timeout: the claim,
# the SES call (its client gives up after SES_CONNECT_TIMEOUT + SES_READ_TIMEOUT, in
# billing.store.mailer) and the result's write must finish before Lambda stops it. What is
# left is pending: the workflow's retry or the next run sends it.
EMAIL_DEADLINE_MARGIN_SECONDS: Final = 30

# How long a function keeps the catalog and the accounts it read before reading them again
# (billing.store.config_store): a pushed account reaches every rater within this time, so a
# plan change must take effect later than the push by this plus the events' 5-minute
# future tolerance (CONTRACT.md 2a, "History is never rewritten").
CONFIG_CACHE_SECONDS: Final = 60.0

# The rater's event source mapping: the knob between cost and freshness (docs/performance.md).
RATING_BATCH_SIZE: Final = 1000
RATING_BATCHING_WINDOW_SECONDS: Final = 1


@dataclass(frozen=True, slots=True)
class StackOutputs:
    """The deployed stack's output keys: how producers, operators and the `billing` command
    find its resources (CloudFormation DescribeStacks) without knowing generated names."""

    usage_stream_name: str = "UsageStreamName"
    usage_stream_arn: str = "UsageStreamArn"
    ledger_table: str = "LedgerTableName"
    config_table: str = "ConfigTableName"
    invoices_table: str = "InvoicesTableName"
    invoice_bucket: str = "InvoiceBucketName"
    quarantine_bucket: str = "QuarantineBucketName"
    archive_bucket: str = "ArchiveBucketName"
    invoice_state_machine: str = "InvoiceRunStateMachineArn"
    # `billing invoices resend` asks this function to resend (it holds the SES grant).
    send_invoices_function: str = "SendInvoicesFunctionName"
    event_bus: str = "EventBusName"
    usage_api_url: str = "UsageApiUrl"
    # The customer API (its base URL, with the stage), its key table and the usage plan
    # `billing keys create` adds each key's throttle to.
    customer_api_url: str = "CustomerApiUrl"
    customer_keys_table: str = "CustomerKeysTableName"
    customer_usage_plan: str = "CustomerUsagePlanId"
    # The warehouse (docs/warehouse.md): where Athena finds its tables, the workgroup to
    # query in, and the managed policy that lets a principal query them.
    warehouse_database: str = "WarehouseDatabaseName"
    warehouse_workgroup: str = "WarehouseWorkGroupName"
    warehouse_query_policy: str = "WarehouseQueryPolicyArn"
    # The key `billing webhooks add` creates each endpoint's secret under (docs/webhooks.md).
    webhook_secrets_key: str = "WebhookSecretsKeyArn"


STACK_OUTPUTS: Final = StackOutputs()
# The stack's name is this prefix and the stage: UsageBilling-dev, UsageBilling-prod.
STACK_NAME_PREFIX: Final = "UsageBilling"


# --- the handlers' settings, read from the environment ---------------------------------------


class SettingsError(RuntimeError):
    """A function's environment lacks a variable it needs, or holds one it cannot read."""


def _required(name: str) -> Any:
    """A setting read from the environment variable `name` (exactly as spelled), which
    must be set and not empty."""
    return Field(validation_alias=name, min_length=1)


def _optional(name: str) -> Any:
    """A setting read from the environment variable `name`, if set."""
    return Field(validation_alias=name)


def _unset_if_empty(value: object) -> object:
    """An empty optional variable counts as unset (the stack sets some to "" when off)."""
    return None if value == "" else value


_UNSET_IF_EMPTY: Final = BeforeValidator(_unset_if_empty)

LedgerTable = Annotated[str, _required(LEDGER_TABLE.env_var)]
ConfigTable = Annotated[str, _required(CONFIG_TABLE.env_var)]
InvoicesTable = Annotated[str, _required(INVOICES_TABLE.env_var)]
QuarantineBucket = Annotated[str, _required(QUARANTINE_BUCKET_ENV)]
InvoiceBucket = Annotated[str, _required(INVOICE_BUCKET_ENV)]
EventBus = Annotated[str, _required(EVENT_BUS_ENV)]
Sender = Annotated[str, _required(SENDER_ENV)]
StateMachine = Annotated[str, _required(STATE_MACHINE_ENV)]
InvoiceKey = Annotated[str | None, _UNSET_IF_EMPTY, _optional(INVOICE_KEY_ENV)]
Seller = Annotated[str | None, _UNSET_IF_EMPTY, _optional(SELLER_ENV)]
SesConfigurationSet = Annotated[str | None, _UNSET_IF_EMPTY, _optional(SES_CONFIGURATION_SET_ENV)]
SpendAlertThresholds = Annotated[str | None, _UNSET_IF_EMPTY, _optional(SPEND_ALERT_THRESHOLDS_ENV)]
SesMaxSendRate = Annotated[PositiveFloat | None, _UNSET_IF_EMPTY, _optional(SES_MAX_SEND_RATE_ENV)]
# Unset: the invoice run's own default (billing.invoicing.due.DEFAULT_GRACE).
GraceSeconds = Annotated[NonNegativeInt | None, _UNSET_IF_EMPTY, _optional(GRACE_ENV)]
RunBucket = Annotated[str, _required(RUN_BUCKET_ENV)]
CustomerKeysTable = Annotated[str, _required(CUSTOMER_KEYS_TABLE.env_var)]
AuthorizerCacheSeconds = Annotated[
    NonNegativeInt, _optional(AUTHORIZER_CACHE_ENV), Field(le=MAX_AUTHORIZER_CACHE_SECONDS)
]
RunConcurrency = Annotated[
    PositiveInt, _optional(RUN_CONCURRENCY_ENV), Field(le=MAX_RUN_CONCURRENCY)
]


def _problem(error: ErrorDetails) -> str:
    """One variable's problem, named by the variable (never showing its value)."""
    name = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "missing":
        return f"{name} is missing"
    if kind == "string_too_short":
        return f"{name} is empty"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{name}: not an integer"
    if kind in ("float_parsing", "float_type"):
        return f"{name}: not a number"
    if kind == "greater_than_equal":
        return f"{name}: must be {error.get('ctx', {}).get('ge')} or more"
    if kind == "less_than_equal":
        return f"{name}: must be {error.get('ctx', {}).get('le')} or less"
    if kind == "greater_than":
        return f"{name}: must be more than {error.get('ctx', {}).get('gt', 0):g}"
    return f"{name}: {error['msg']}"


class HandlerSettings(BaseSettings):
    """What one function reads from its environment; each function's model lists the
    variables it needs. `read()` at cold start: a missing or bad variable stops the
    function there, named in a SettingsError."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=True)

    @classmethod
    def read(cls) -> Self:
        try:
            return cls()
        except ValidationError as error:
            problems = "; ".join(_problem(e) for e in error.errors(include_url=False))
            raise SettingsError(f"this function's environment: {problems}") from None


class RatingSettings(HandlerSettings):
    """rate_usage."""

    ledger_table: LedgerTable
    config_table: ConfigTable
    quarantine_bucket: QuarantineBucket


class InvoicingSettings(HandlerSettings):
    """The invoice workflow's steps (list_due, issue_invoices, send_invoices)."""

    ledger_table: LedgerTable
    config_table: ConfigTable
    invoices_table: InvoicesTable
    invoice_bucket: InvoiceBucket
    invoice_kms_key_id: InvoiceKey = None
    event_bus_name: EventBus
    sender_email: Sender
    seller: Seller = None  # JSON, see billing.core.seller
    ses_configuration_set: SesConfigurationSet = None
    grace_seconds: GraceSeconds = None
    run_bucket: RunBucket
    run_concurrency: RunConcurrency = DEFAULT_RUN_CONCURRENCY
    # Issue and Send pace their emails by these (billing.invoicing.pacing).
    ses_max_send_rate: SesMaxSendRate = None


class ReportSettings(HandlerSettings):
    """report_run: the run's results and report in the run bucket."""

    run_bucket: RunBucket


class EmailFeedbackSettings(HandlerSettings):
    """email_events: SES's bounces and complaints onto invoice records."""

    invoices_table: InvoicesTable
    event_bus_name: EventBus


class AccountViewSettings(HandlerSettings):
    """usage_api: reads only."""

    ledger_table: LedgerTable
    config_table: ConfigTable
    invoices_table: InvoicesTable
    invoice_bucket: InvoiceBucket


class OperatorApiSettings(HandlerSettings):
    """operator_api: the catalog and the accounts (config table), the accounts' due hints
    (ledger table) and, for a hint, the account's invoices."""

    ledger_table: LedgerTable
    config_table: ConfigTable
    invoices_table: InvoicesTable


class CustomerApiSettings(HandlerSettings):
    """customer_api: the account views' reads, and the customer's thresholds (config table)."""

    ledger_table: LedgerTable
    config_table: ConfigTable
    invoices_table: InvoicesTable
    invoice_bucket: InvoiceBucket


class SpendAlertSettings(HandlerSettings):
    """spend_alerts: the operator's thresholds (events), the customers' own (read from the
    config table; events and an email from the invoices' sender, through the same
    configuration set)."""

    ledger_table: LedgerTable
    config_table: ConfigTable
    event_bus_name: EventBus
    spend_alert_thresholds: SpendAlertThresholds = None  # JSON, see billing.core.spend
    sender_email: Sender
    seller: Seller = None  # JSON, see billing.core.seller: the name emails come from
    ses_configuration_set: SesConfigurationSet = None


class StarterSettings(HandlerSettings):
    """start_invoice_run: the schedule's target."""

    state_machine_arn: StateMachine


class CustomerAuthorizerSettings(HandlerSettings):
    """customer_authorizer: reads one key item per credential it has not judged lately."""

    customer_keys_table: CustomerKeysTable
    authorizer_cache_seconds: AuthorizerCacheSeconds = MAX_AUTHORIZER_CACHE_SECONDS


class WarehouseFeedSettings(HandlerSettings):
    """warehouse_rows: new invoice, correction and quarantine documents as rows of the
    warehouse."""

    ledger_table: LedgerTable
    config_table: ConfigTable
    invoice_bucket: InvoiceBucket
    quarantine_bucket: QuarantineBucket
    invoices_stream: Annotated[str, _required(WAREHOUSE_STREAM_ENVS["invoices"])]
    invoice_lines_stream: Annotated[str, _required(WAREHOUSE_STREAM_ENVS["invoice_lines"])]
    corrections_stream: Annotated[str, _required(WAREHOUSE_STREAM_ENVS["corrections"])]
    correction_lines_stream: Annotated[str, _required(WAREHOUSE_STREAM_ENVS["correction_lines"])]
    daily_usage_stream: Annotated[str, _required(WAREHOUSE_STREAM_ENVS["daily_usage"])]
    rejected_records_stream: Annotated[str, _required(WAREHOUSE_STREAM_ENVS["rejected_records"])]

    def streams(self) -> dict[str, str]:
        """Each table's delivery stream, by table name (its field: `<table>_stream`)."""
        return {table: str(getattr(self, f"{table}_stream")) for table in WAREHOUSE_STREAM_ENVS}
