"""Each function's permissions, written out: the actions its code calls, on the stores it
calls them on, and the key uses those calls make, each through its service and for that
store only. One table (`FUNCTION_ACTIONS`) is the truth: the stack builds every function's
policy from it, docs/infrastructure.md restates it, and the infra tests hold the template,
the document and the code's calls to it.

CDK's grants (table.grant_read_write_data and kin, an event source's or a destination's
bind) give more than the code uses: Scan, DeleteItem and BatchWriteItem on tables,
kms:ReEncrypt* and kms:Encrypt on every key, with no kms:ViaService. The event sources and
destinations still bind through CDK (they need the wiring), and then `apply` replaces the
role's CDK-made policy by the one built here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aws_cdk import Stack, aws_iam, aws_kms
from constructs import Construct

from stacks.common import HandlerFunction

# Where a call in the table comes from: the code (module:qualified name, and the SDK
# method it calls there), or AWS on the function's behalf.
EVENT_SOURCE: Final = "Lambda's event source mapping, with the function's role"
DESTINATION: Final = "Lambda's on-failure destination, with the function's role"


@dataclass(frozen=True)
class Call:
    action: str
    by: str  # "module:Qualified.name sdk_method", or EVENT_SOURCE / DESTINATION


def calls(by: str, *actions: str) -> tuple[Call, ...]:
    return tuple(Call(action, by) for action in actions)


_BATCH_GET: Final = "billing.store.batches:batch_get batch_get_item"
_BATCH_WRITE: Final = "billing.store.batches:batch_write batch_write_item"
_LEDGER_SAVE: Final = "billing.store.ledger_store:LedgerStore.save put_item"
_LEDGER_READ_BACK: Final = "billing.store.ledger_store:LedgerStore._landed get_item"
_PERIOD_ITEM: Final = "billing.store.period_items:PeriodItems.read get_item"
_PERIOD_PUT: Final = "billing.store.period_items:PeriodItems.put put_item"
_LEDGER_ARCHIVED: Final = "billing.store.period_items:PeriodItems.archived_usage get_item"
_CATALOG: Final = "billing.store.config_store:ConfigStore.catalog get_item"
_HINT_UPDATE: Final = "billing.store.due_hints:DueHints._update update_item"
_INVOICE_QUERY: Final = "billing.store.invoice_records:InvoiceTable._query_items query"
_NUMBER: Final = "billing.store.invoice_numbers:InvoiceNumbers._allocate transact_write_items"
_CREDIT_NOTE: Final = "billing.store.credit_notes:CreditNoteStore._allocate transact_write_items"
_SEND: Final = "billing.store.mailer:Mailer.send_raw send_email"
# The account's send rate, which Issue and Send pace their emails by (unless configured).
_SEND_QUOTA: Final = "billing.store.mailer:SendQuota.max_send_rate get_account"
_PUBLISH: Final = "billing.store.events:EventPublisher._put put_events"
_INVOICE_UPDATES: Final = (
    *(
        f"billing.store.invoice_store:InvoiceStore.{method} update_item"
        for method in ("mark_stored", "mark_announced")
    ),
    *(
        f"billing.store.invoice_emails:InvoiceEmails.{method} update_item"
        for method in ("claim_email", "release_email", "email_result")
    ),
)
_KINESIS_SOURCE: Final = calls(
    EVENT_SOURCE,
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
)

# What billing.customer.account_views reads: an account, its ledger and its invoices.
_ACCOUNT_VIEWS: Final[Mapping[str, tuple[Call, ...]]] = {
    "Config": (
        *calls(_CATALOG, "dynamodb:GetItem"),
        *calls(_BATCH_GET, "dynamodb:BatchGetItem"),
    ),
    "Ledger": (
        *calls(_BATCH_GET, "dynamodb:BatchGetItem"),
        *calls(_LEDGER_ARCHIVED, "dynamodb:GetItem"),
        *calls(_PERIOD_ITEM, "dynamodb:GetItem"),  # a period kept outside the ledger
    ),
    "Invoices": calls(_INVOICE_QUERY, "dynamodb:Query"),
    "InvoiceDocuments": calls(
        "billing.store.documents:DocumentStore.get get_object", "s3:GetObject"
    ),
}

# function -> store -> the calls made on it. Stores are named in `Stores` below.
FUNCTION_ACTIONS: Final[Mapping[str, Mapping[str, tuple[Call, ...]]]] = {
    "rate_usage": {
        "UsageStream": _KINESIS_SOURCE,
        "RatingFailures": calls(DESTINATION, "sqs:SendMessage"),
        "Config": (
            *calls(_CATALOG, "dynamodb:GetItem"),
            *calls(_BATCH_GET, "dynamodb:BatchGetItem"),
        ),
        "Ledger": (
            # ledgers, id chunks, and a keyed account's id claims
            *calls(_BATCH_GET, "dynamodb:BatchGetItem"),
            # a ledger written before its id chunk, a period item from the ledger's log
            *calls(_LEDGER_SAVE, "dynamodb:PutItem"),
            *calls(_PERIOD_PUT, "dynamodb:PutItem"),
            # a ledger read back after a lost answer; a period item before its log is added
            *calls(_LEDGER_READ_BACK, "dynamodb:GetItem"),
            *calls(_PERIOD_ITEM, "dynamodb:GetItem"),
            # a keyed account's id claims
            *calls(_BATCH_WRITE, "dynamodb:BatchWriteItem"),
            # an event late for its period lowers the account's due hint
            *calls(_HINT_UPDATE, "dynamodb:UpdateItem"),
        ),
        "Quarantine": (
            *calls("billing.store.quarantine:Quarantine._put put_object", "s3:PutObject"),
            # is a rejection another environment decided kept? (HeadObject asks GetObject)
            *calls("billing.store.quarantine:Quarantine.holds head_object", "s3:GetObject"),
            # keeping a staged rejection: a copy writes here
            *calls("billing.store.quarantine:Quarantine.promote copy_object", "s3:PutObject"),
        ),
        "QuarantineStaged": (
            *calls("billing.store.quarantine:Quarantine._put put_object", "s3:PutObject"),
            # ... and reads the staged copy
            *calls("billing.store.quarantine:Quarantine.promote copy_object", "s3:GetObject"),
        ),
        # an empty object naming each rejection's reason, time and account, for listings
        "QuarantineIndex": calls(
            "billing.store.quarantine:Quarantine._index put_object", "s3:PutObject"
        ),
        # a batch's UsageRejected summaries (billing.rating.rejection_summaries)
        "DomainEvents": calls(_PUBLISH, "events:PutEvents"),
    },
    "archive_records": {},
    # The warehouse's Firehose processor: rows from the records it is handed, no call.
    "warehouse_records": {},
    # A new invoice or quarantine document as rows of the warehouse (billing.warehouse.feed).
    "warehouse_rows": {
        "InvoiceDocuments": calls(
            "billing.store.bucket_objects:BucketObjects.get get_object", "s3:GetObject"
        ),
        "Quarantine": calls(
            "billing.store.bucket_objects:BucketObjects.get get_object", "s3:GetObject"
        ),
        # the invoice's plan: the catalog and its account
        "Config": (
            *calls(_CATALOG, "dynamodb:GetItem"),
            *calls(_BATCH_GET, "dynamodb:BatchGetItem"),
        ),
        # the closed period's usage by day
        "Ledger": calls(_LEDGER_ARCHIVED, "dynamodb:GetItem"),
        "WarehouseStreams": calls(
            "billing.store.row_streams:RowStreams._put put_record_batch", "firehose:PutRecordBatch"
        ),
        "WarehouseRowFailures": calls(DESTINATION, "sqs:SendMessage"),
    },
    "list_due": {
        "Config": (
            # every account, for a run for one period
            *calls("billing.store.config_store:ConfigStore.account_pages scan", "dynamodb:Scan"),
            # the accounts whose due hints are due
            *calls(_BATCH_GET, "dynamodb:BatchGetItem"),
        ),
        "LedgerDueIndex": calls("billing.store.due_hints:DueHints.due query", "dynamodb:Query"),
        "Ledger": (
            # hints read, moved on, lowered and removed
            *calls(_BATCH_GET, "dynamodb:BatchGetItem"),
            *calls(_HINT_UPDATE, "dynamodb:UpdateItem"),
            *calls("billing.store.due_hints:DueHints.delete delete_item", "dynamodb:DeleteItem"),
        ),
        "Invoices": (
            *calls(_BATCH_GET, "dynamodb:BatchGetItem"),
            # the unfinished invoices of an account no longer known
            *calls(_INVOICE_QUERY, "dynamodb:Query"),
        ),
        # the run's manifest: one put, or a multipart upload once it outgrows a part (each
        # step of which S3 authorizes as s3:PutObject)
        "RunFiles": (
            *calls("billing.store.run_files:_Upload.finish put_object", "s3:PutObject"),
            *calls("billing.store.run_files:_Upload.part create_multipart_upload", "s3:PutObject"),
            *calls("billing.store.run_files:_Upload.part upload_part", "s3:PutObject"),
            *calls(
                "billing.store.run_files:_Upload.finish complete_multipart_upload",
                "s3:PutObject",
            ),
            *calls(
                "billing.store.run_files:_Upload.abort abort_multipart_upload",
                "s3:AbortMultipartUpload",
            ),
        ),
    },
    "issue_invoices": {
        "Config": (
            *calls(_CATALOG, "dynamodb:GetItem"),
            *calls(_BATCH_GET, "dynamodb:BatchGetItem"),
        ),
        "Ledger": (
            *calls(_BATCH_GET, "dynamodb:BatchGetItem"),
            *calls(_LEDGER_ARCHIVED, "dynamodb:GetItem"),
            # the close: the period's archive, then the ledger (read back after a lost answer)
            *calls(_PERIOD_PUT, "dynamodb:PutItem"),
            *calls(_LEDGER_SAVE, "dynamodb:PutItem"),
            *calls(_LEDGER_READ_BACK, "dynamodb:GetItem"),
            *calls(_PERIOD_ITEM, "dynamodb:GetItem"),
        ),
        "Invoices": (
            *calls(_BATCH_GET, "dynamodb:BatchGetItem"),
            # the numbering transaction: an Update of the sequence, a Put per record and per
            # prepaid credit balance it moves
            *calls(_NUMBER, "dynamodb:PutItem", "dynamodb:UpdateItem"),
        ),
        # documents are created (If-None-Match), never replaced
        "NewInvoiceDocuments": calls(
            "billing.store.documents:DocumentStore.put_new put_object", "s3:PutObject"
        ),
        # an invoice stored by an attempt that stopped before announcing it is read back
        "InvoiceDocuments": calls(
            "billing.store.documents:DocumentStore.get get_object", "s3:GetObject"
        ),
        "DomainEvents": calls(_PUBLISH, "events:PutEvents"),
        "Email": calls(_SEND, "ses:SendEmail", "ses:SendRawEmail"),
        "SesAccount": calls(_SEND_QUOTA, "ses:GetAccount"),
    },
    "send_invoices": {
        "Config": calls(_BATCH_GET, "dynamodb:BatchGetItem"),
        "Invoices": (
            *calls(_BATCH_GET, "dynamodb:BatchGetItem"),
            *calls(_INVOICE_UPDATES[2], "dynamodb:UpdateItem"),
            # a credit note (`billing invoices void`): its number, its record and the
            # invoice's credits in one transaction, then its record's marks
            *calls(_CREDIT_NOTE, "dynamodb:PutItem", "dynamodb:UpdateItem"),
            *(
                call
                for method in (
                    "mark_stored",
                    "claim_announcement",
                    "release_announcement",
                    "mark_announced",
                )
                for call in calls(
                    f"billing.store.credit_notes:CreditNoteStore.{method} update_item",
                    "dynamodb:UpdateItem",
                )
            ),
        ),
        # a credit note's documents, beside its invoice's: created, never replaced
        "NewInvoiceDocuments": calls(
            "billing.store.documents:DocumentStore.put_new put_object", "s3:PutObject"
        ),
        "InvoiceDocuments": calls(
            "billing.store.documents:DocumentStore.get get_object", "s3:GetObject"
        ),
        "DomainEvents": calls(_PUBLISH, "events:PutEvents"),
        "Email": calls(_SEND, "ses:SendEmail", "ses:SendRawEmail"),
        "SesAccount": calls(_SEND_QUOTA, "ses:GetAccount"),
    },
    "report_run": {
        # the batches' results (and the manifest, to name a batch that left none), and the
        # whole report written beside them
        "RunFiles": (
            *calls("billing.store.run_files:RunFiles._get get_object", "s3:GetObject"),
            *calls("billing.store.run_files:RunFiles.put_report put_object", "s3:PutObject"),
        ),
        "RunFolders": calls(
            "billing.store.run_files:RunFiles._keys list_objects_v2", "s3:ListBucket"
        ),
    },
    "email_events": {
        # the records of invoices and of credit notes and adjustment invoices, by the key
        # the email's header names
        "Invoices": (
            *calls(
                "billing.store.invoice_emails:InvoiceEmails._read_record get_item",
                "dynamodb:GetItem",
            ),
            *calls(
                "billing.store.invoice_emails:InvoiceEmails._record_feedback update_item",
                "dynamodb:UpdateItem",
            ),
            *calls(
                "billing.store.invoice_emails:InvoiceEmails._record_delivery update_item",
                "dynamodb:UpdateItem",
            ),
            *calls(
                "billing.store.invoice_emails:InvoiceEmails.mark_failure_announced update_item",
                "dynamodb:UpdateItem",
            ),
        ),
        "DomainEvents": calls(_PUBLISH, "events:PutEvents"),
        "EmailEventFailures": calls(DESTINATION, "sqs:SendMessage"),
    },
    "start_invoice_run": {
        "InvoiceRun": (
            *calls(
                "billing.store.workflows:WorkflowStarter.begin start_execution",
                "states:StartExecution",
            ),
            # is a run still going? (then the scheduled one is not started)
            *calls(
                "billing.store.workflows:WorkflowStarter.running list_executions",
                "states:ListExecutions",
            ),
        ),
        "ScheduleFailures": calls(DESTINATION, "sqs:SendMessage"),
    },
    "usage_api": _ACCOUNT_VIEWS,
    # The operator API: the accounts and the catalog read (one item, or a Scan page) and
    # written one item at a time, only under their own partition keys (a condition on the
    # item read); and the accounts' due hints, kept as a push keeps them.
    "operator_api": {
        "Config": (
            *calls("billing.store.config_store:ConfigStore._get get_item", "dynamodb:GetItem"),
            *calls("billing.store.config_store:ConfigStore.account_page scan", "dynamodb:Scan"),
            # every account, to refuse a catalog that drops a plan one uses
            *calls("billing.store.config_store:ConfigStore.account_pages scan", "dynamodb:Scan"),
        ),
        "ConfigProfiles": (
            *calls("billing.store.config_store:ConfigStore._put_on put_item", "dynamodb:PutItem"),
            # an account in one transaction with an Update of the catalog item: conditional
            # on the catalog it was validated against, stamping it for catalog replacements
            *calls(
                "billing.store.config_store:ConfigStore.put_account_on transact_write_items",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ),
        ),
        "Ledger": (
            *calls(_BATCH_GET, "dynamodb:BatchGetItem"),
            *calls(_HINT_UPDATE, "dynamodb:UpdateItem"),
        ),
        # an account's earliest invoice, which a hint may start from
        "Invoices": calls(_INVOICE_QUERY, "dynamodb:Query"),
    },
    # One read of the key table per credential judged, nothing else.
    "customer_authorizer": {
        "CustomerKeys": calls("billing.store.api_keys:ApiKeys.get get_item", "dynamodb:GetItem"),
    },
    # The customer API: the usage API's reads, its customer's thresholds (only items under
    # their own partition key prefix: the store's dynamodb:LeadingKeys condition), and links
    # to invoice PDFs, which S3 authorizes as this role's GetObject when they are followed.
    "customer_api": {
        "Config": (
            *calls(_CATALOG, "dynamodb:GetItem"),
            *calls(_BATCH_GET, "dynamodb:BatchGetItem"),
        ),
        "ConfigThresholds": (
            *calls(
                "billing.store.customer_thresholds:ThresholdsStore.get get_item",
                "dynamodb:GetItem",
            ),
            *calls(
                "billing.store.customer_thresholds:ThresholdsStore.put update_item",
                "dynamodb:UpdateItem",
            ),
        ),
        "Ledger": (
            *calls(_BATCH_GET, "dynamodb:BatchGetItem"),
            *calls(_LEDGER_ARCHIVED, "dynamodb:GetItem"),
            *calls(_PERIOD_ITEM, "dynamodb:GetItem"),  # a period kept outside the ledger
        ),
        "Invoices": calls(_INVOICE_QUERY, "dynamodb:Query"),
        "InvoiceDocuments": (
            *calls("billing.store.documents:DocumentStore.get get_object", "s3:GetObject"),
            *calls(
                "billing.store.documents:DocumentStore.presigned_get generate_presigned_url",
                "s3:GetObject",
            ),
        ),
    },
    "spend_alerts": {
        "LedgerStream": calls(
            EVENT_SOURCE,
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
        ),
        "AnyStream": calls(EVENT_SOURCE, "dynamodb:ListStreams"),
        "AlertFailures": calls(DESTINATION, "sqs:SendMessage"),
        "Config": (
            *calls(_CATALOG, "dynamodb:GetItem"),
            *calls(_BATCH_GET, "dynamodb:BatchGetItem"),
        ),
        # the customer's own thresholds, read only: one item per account, by its prefix
        "ConfigThresholds": calls(
            "billing.store.customer_thresholds:ThresholdsStore.get get_item", "dynamodb:GetItem"
        ),
        "Ledger": (
            *calls("billing.store.alert_claims:AlertClaims.claim put_item", "dynamodb:PutItem"),
            *calls("billing.store.alert_claims:AlertClaims.claim get_item", "dynamodb:GetItem"),
            *calls(
                "billing.store.alert_claims:AlertClaims.release delete_item",
                "dynamodb:DeleteItem",
            ),
            # a customer's alert: its claim, and its email's state on it
            *calls("billing.store.alert_notices:AlertNotices.claim put_item", "dynamodb:PutItem"),
            *calls("billing.store.alert_notices:AlertNotices.claim get_item", "dynamodb:GetItem"),
            *calls(
                "billing.store.alert_notices:AlertNotices.release delete_item",
                "dynamodb:DeleteItem",
            ),
            *calls(
                "billing.store.alert_notices:AlertNotices._update update_item",
                "dynamodb:UpdateItem",
            ),
        ),
        "DomainEvents": calls(_PUBLISH, "events:PutEvents"),
        # a customer's alert email: as the invoices' sender, through their configuration set
        "Email": calls(_SEND, "ses:SendEmail", "ses:SendRawEmail"),
    },
    # Webhooks (docs/webhooks.md): its queue through the event source, which it also puts
    # each event's per-endpoint messages on (the fan-out) and delays a refused message on
    # (the backoff); the endpoints' items and their secrets, read only.
    "deliver_webhooks": {
        "WebhookEvents": (
            *calls(
                EVENT_SOURCE, "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"
            ),
            *calls(
                "billing.store.webhook_queue:WebhookQueue.send send_message_batch",
                "sqs:SendMessage",
            ),
            *calls(
                "billing.store.webhook_queue:WebhookQueue.delay change_message_visibility",
                "sqs:ChangeMessageVisibility",
            ),
        ),
        "ConfigWebhooks": (
            *calls("billing.store.webhook_endpoints:WebhookEndpoints.all query", "dynamodb:Query"),
            *calls("billing.store.webhook_endpoints:WebhookEndpoints.find query", "dynamodb:Query"),
        ),
        "WebhookSecrets": (
            *calls(
                "billing.store.webhook_endpoints:WebhookSecrets.versions get_secret_value",
                "secretsmanager:GetSecretValue",
            ),
            *calls(
                "billing.store.webhook_endpoints:WebhookSecrets._previous get_secret_value",
                "secretsmanager:GetSecretValue",
            ),
        ),
    },
}

# The key uses a store's calls make, done by its service on the caller's behalf.
_READS: Final = frozenset(
    {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:GetRecords",
        "s3:GetObject",
        "kinesis:GetRecords",
        "sqs:ReceiveMessage",
        "secretsmanager:GetSecretValue",
    }
)
_TABLE_WRITES: Final = frozenset({"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"})


def key_actions(actions: Sequence[str]) -> list[str]:
    """What the service does with the store's key for these calls."""
    needed: set[str] = set()
    for action in actions:
        if action in _READS:
            needed.add("kms:Decrypt")
        if action in _TABLE_WRITES:
            needed |= {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"}
        if action == "s3:PutObject":
            needed.add("kms:GenerateDataKey")
        if action == "s3:AbortMultipartUpload":
            # a multipart upload's parts are read back (decrypted) to complete it; the
            # function that can abort one is the one that uploads in parts
            needed.add("kms:Decrypt")
        if action == "sqs:SendMessage":
            needed |= {"kms:Decrypt", "kms:GenerateDataKey"}
        if action == "states:StartExecution":
            needed.add("kms:GenerateDataKey")
    return sorted(needed)


@dataclass(frozen=True)
class Store:
    """Where calls go: the resources an IAM statement names, and the key its service uses,
    with the service and the encryption context that pin the use to this store."""

    resources: Sequence[str]
    key: aws_kms.IKey | None = None
    service: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    conditions: Mapping[str, Any] = field(default_factory=dict)


def policy_statements(
    stack: Stack, calls_by_store: Mapping[str, tuple[Call, ...]], stores: Mapping[str, Store]
) -> list[aws_iam.PolicyStatement]:
    statements = []
    for name, made in calls_by_store.items():
        store = stores[name]
        actions = sorted({call.action for call in made})
        statements.append(
            aws_iam.PolicyStatement(
                sid=f"{name}Calls",
                actions=actions,
                resources=list(store.resources),
                conditions=dict(store.conditions) or None,
            )
        )
        uses = key_actions(actions)
        if store.key is not None and uses:
            assert store.service, name
            statements.append(
                aws_iam.PolicyStatement(
                    sid=f"{name}Key",
                    actions=uses,
                    resources=[store.key.key_arn],
                    conditions=_merged(
                        {
                            "StringEquals": {
                                "kms:ViaService": f"{store.service}.{stack.region}.amazonaws.com"
                            }
                        },
                        store.context,
                    ),
                )
            )
    return statements


def _merged(*conditions: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for condition in conditions:
        for operator, keys in condition.items():
            merged.setdefault(operator, {}).update(keys)
    return merged


def apply(
    scope: Construct, functions: Mapping[str, HandlerFunction], stores: Mapping[str, Store]
) -> None:
    """Give each function exactly its table's permissions (and its log group and X-Ray)."""
    assert set(functions) == set(FUNCTION_ACTIONS), "every function has a row in the table"
    stack = Stack.of(scope)
    for name, handler in functions.items():
        # What CDK's grants and binds put in the role's default policy goes: this replaces it.
        handler.role.node.try_remove_child("DefaultPolicy")
        policy = aws_iam.Policy(
            handler,
            "Permissions",
            roles=[handler.role],
            statements=[
                aws_iam.PolicyStatement(
                    sid="OwnLogGroup",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[handler.log_group.log_group_arn],
                ),
                aws_iam.PolicyStatement(
                    sid="ActiveTracing",
                    actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                    resources=["*"],
                ),
                *policy_statements(stack, FUNCTION_ACTIONS[name], stores),
            ],
        )
        # The function (and so its event source mapping) is created after its policy.
        handler.function.node.add_dependency(policy)
