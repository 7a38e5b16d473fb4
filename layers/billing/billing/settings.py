"""The resources the project's code and its infrastructure share, declared once.

The CDK stack creates them from these declarations, the local runtime provisions them from
the same ones, and handlers find them through the environment variables named here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class TableSpec:
    construct_id: str
    env_var: str
    partition_key: str = "pk"
    sort_key: str = "sk"
    ttl_attribute: str | None = None
    stream: bool = False


# Account ledgers (aggregates, running charges, dedupe state), spilled id chunks, archives.
LEDGER_TABLE: Final = TableSpec("Ledger", "LEDGER_TABLE", ttl_attribute="expires_at", stream=True)
# The catalog and the accounts, as validated documents.
CONFIG_TABLE: Final = TableSpec("Config", "CONFIG_TABLE")
# Invoice records and the issuer's invoice-number sequence.
INVOICES_TABLE: Final = TableSpec("Invoices", "INVOICES_TABLE")

QUARANTINE_BUCKET_ENV: Final = "QUARANTINE_BUCKET"
INVOICE_BUCKET_ENV: Final = "INVOICE_BUCKET"
INVOICE_KEY_ENV: Final = "INVOICE_KMS_KEY_ID"  # SSE-KMS key for invoice documents
EVENT_BUS_ENV: Final = "EVENT_BUS_NAME"
SENDER_ENV: Final = "SENDER_EMAIL"
# The seller printed on invoices, as JSON (billing.core.seller.SellerSettings; CDK context
# `seller`).
SELLER_ENV: Final = "INVOICE_SELLER"
SES_CONFIGURATION_SET_ENV: Final = "SES_CONFIGURATION_SET"
GRACE_ENV: Final = "INVOICE_GRACE_SECONDS"
STATE_MACHINE_ENV: Final = "INVOICE_RUN_STATE_MACHINE_ARN"
USAGE_STREAM_ENV: Final = "USAGE_STREAM"
# spend_alerts: JSON of alert amounts per currency, e.g. {"USD": ["100", "1000"]}.
SPEND_ALERT_THRESHOLDS_ENV: Final = "SPEND_ALERT_THRESHOLDS"

# spend_alerts only needs ledger items: the event source mapping's filter drops id chunks,
# archives and alert claims before they cost an invocation (the handler ignores them too).
SPEND_ALERTS_STREAM_FILTER: Final = {"dynamodb": {"Keys": {"sk": {"S": ["LEDGER"]}}}}

TABLES: Final = (LEDGER_TABLE, CONFIG_TABLE, INVOICES_TABLE)

# The invoice workflow's Issue and Send functions' timeout. A step handles one batch of up
# to 99 invoices one after another, about 100-200 ms each on AWS (a few DynamoDB and S3
# calls, SES, the PDF), so 10-20 s a batch; an invoice whose names need the embedded CJK
# fonts renders in about 1-1.5 s (docs/invoice-document.md), so a batch of only those takes
# about 100-170 s. 300 s covers
# that with room for throttling backoff. The workflow's Task TimeoutSeconds is 30 s above
# it (invoice_run.asl.json), so a timed-out function has stopped before it is retried.
INVOICE_STEP_TIMEOUT_SECONDS: Final = 300
INVOICE_TASK_TIMEOUT_SECONDS: Final = INVOICE_STEP_TIMEOUT_SECONDS + 30
# An email claim (billing.invoicing.delivery) older than this belongs to a step that has
# stopped: the function that made it was stopped at its timeout at the latest. A minute of
# margin for the clocks of two functions.
EMAIL_CLAIM_LEASE_SECONDS: Final = INVOICE_STEP_TIMEOUT_SECONDS + 60

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


STACK_OUTPUTS: Final = StackOutputs()
# The stack's name is this prefix and the stage: UsageBilling-dev, UsageBilling-prod.
STACK_NAME_PREFIX: Final = "UsageBilling"
