"""The stack only wires constructs together, one per concern."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aws_cdk import CfnOutput, CfnParameter, Stack, aws_dynamodb, aws_kms, aws_s3, aws_sqs
from constructs import Construct

from billing.settings import DUE_INDEX, EVENT_BUS_ENV, STACK_OUTPUTS
from billing.store.config_store import ACCOUNT_PREFIX, CATALOG_PARTITION
from billing.store.customer_thresholds import THRESHOLDS_PREFIX
from billing.store.run_files import RUNS_PREFIX
from billing.store.webhook_endpoints import WEBHOOKS_PARTITION
from stacks import permissions
from stacks.alerts import SpendAlerts
from stacks.api import UsageApi
from stacks.customer_api import CustomerApi
from stacks.ingest import QUARANTINE_INDEX_PREFIX, QUARANTINE_PREFIX, STAGED_PREFIX, Ingest
from stacks.invoicing import INVOICE_PREFIX, Invoicing
from stacks.layer import BillingLayer
from stacks.ledger import Ledger
from stacks.monitoring import Monitoring
from stacks.permissions import Store
from stacks.security import Security
from stacks.settings import Stage
from stacks.warehouse import Warehouse
from stacks.warehouse_feed import WarehouseFeed
from stacks.webhooks import Webhooks

# What the sender parameter accepts: one plain address (SES verifies it after deploy).
SENDER_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class BillingStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.sender = CfnParameter(
            self,
            "SenderEmail",
            type="String",
            description="The address invoices are emailed from (an SES identity is created "
            "for it; confirm the verification email SES sends before the first run)",
            allowed_pattern=SENDER_PATTERN,
            constraint_description="one email address, like billing@example.com",
        )
        self.security = Security(self, "Security", stage=stage)
        keys = self.security.keys
        key = keys.state
        access_logs = self.security.access_logs
        layer = BillingLayer(self, "BillingLayer").layer
        self.ledger = Ledger(self, "Tables", keys=keys, stage=stage)
        self.ingest = Ingest(
            self,
            "Ingest",
            keys=keys,
            access_logs=access_logs,
            layer=layer,
            ledger=self.ledger,
            stage=stage,
        )
        self.invoicing = Invoicing(
            self,
            "Invoicing",
            keys=keys,
            access_logs=access_logs,
            layer=layer,
            ledger=self.ledger,
            sender=self.sender.value_as_string,
            stage=stage,
        )
        # The rater publishes its batches' UsageRejected summaries on the domain-event bus.
        self.ingest.rater.function.add_environment(EVENT_BUS_ENV, self.invoicing.bus.event_bus_name)
        self.api = UsageApi(
            self,
            "Api",
            key=key,
            layer=layer,
            ledger=self.ledger,
            invoice_bucket=self.invoicing.bucket,
            stage=stage,
        )
        self.customer_api = CustomerApi(
            self,
            "CustomerApi",
            key=key,
            layer=layer,
            ledger=self.ledger,
            invoice_bucket=self.invoicing.bucket,
            stage=stage,
        )
        self.alerts = SpendAlerts(
            self,
            "Alerts",
            key=key,
            layer=layer,
            ledger=self.ledger,
            bus=self.invoicing.bus,
            sender=self.sender.value_as_string,
            configuration_set=self.invoicing.configuration_set,
            stage=stage,
        )
        self.warehouse = Warehouse(
            self,
            "Warehouse",
            key=keys.warehouse,
            access_logs=access_logs,
            stage=stage,
            stream=self.ingest.stream,
            stream_key=keys.usage,
            state_key=key,
            layer=layer,
        )
        self.warehouse_feed = WarehouseFeed(
            self,
            "WarehouseFeed",
            warehouse=self.warehouse,
            invoice_bucket=self.invoicing.bucket,
            quarantine_bucket=self.ingest.quarantine,
            ledger=self.ledger,
            layer=layer,
            state_key=key,
            stage=stage,
        )
        self.webhooks = Webhooks(
            self,
            "Webhooks",
            key=key,
            layer=layer,
            ledger=self.ledger,
            bus=self.invoicing.bus,
            stage=stage,
        )
        inv = self.invoicing
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            key=key,
            stage=stage,
            rater=self.ingest.rater,
            stream_consumers=[self.ingest.rater, self.alerts.handler],
            functions=[
                self.ingest.rater,
                self.ingest.archiver,
                self.warehouse.processor,
                self.warehouse_feed.handler,
                inv.list_due,
                inv.issue_invoices,
                inv.send_invoices,
                inv.report_run,
                inv.start_invoice_run,
                inv.email_events,
                *self.api.functions,
                *self.customer_api.functions,
                self.alerts.handler,
                self.webhooks.handler,
            ],
            failure_queues=[
                self.warehouse_feed.failures,
                self.ingest.rating_failures,
                inv.schedule_failures,
                inv.email_event_failures,
                self.alerts.failures,
                self.webhooks.dead_letters,
            ],
            state_machine=inv.state_machine,
            api=self.api.api,
            customer_api=self.customer_api.api,
            converting_streams={
                "WarehouseRawUsage": self.warehouse.raw_usage_stream.ref,
                **{
                    f"Warehouse{name}": stream.ref
                    for name, stream in self.warehouse_feed.named_streams().items()
                },
            },
        )
        self._permissions()
        self._outputs()

    def _permissions(self) -> None:
        """Every function's policy, from the table in stacks/permissions.py."""
        inv, ingest, tables = self.invoicing, self.ingest, self.ledger
        keys = self.security.keys

        def table(table: aws_dynamodb.ITable, key: aws_kms.IKey) -> Store:
            return Store(
                [table.table_arn],
                key,
                "dynamodb",
                {
                    "StringEquals": {
                        "kms:EncryptionContext:aws:dynamodb:tableName": table.table_name
                    }
                },
            )

        def objects(bucket: aws_s3.IBucket, prefix: str, key: aws_kms.IKey) -> Store:
            # With an S3 Bucket Key, S3 asks KMS under the bucket's ARN.
            arns = [bucket.bucket_arn, bucket.arn_for_objects("*")]
            return Store(
                [bucket.arn_for_objects(f"{prefix}*")],
                key,
                "s3",
                {"StringLike": {"kms:EncryptionContext:aws:s3:arn": arns}},
            )

        def queue(queue: aws_sqs.IQueue) -> Store:
            return Store(
                [queue.queue_arn],
                keys.state,
                "sqs",
                {"StringEquals": {"kms:EncryptionContext:aws:sqs:arn": queue.queue_arn}},
            )

        ledger = tables.ledger
        assert ledger.table_stream_arn is not None
        stores = {
            "Ledger": table(ledger, keys.state),
            "LedgerStream": replace(table(ledger, keys.state), resources=[ledger.table_stream_arn]),
            "LedgerDueIndex": replace(
                table(ledger, keys.state), resources=[f"{ledger.table_arn}/index/{DUE_INDEX.name}"]
            ),
            "AnyStream": Store(["*"]),
            "Config": table(tables.config, keys.state),
            # the accounts' profiles and the catalog: the only items the operator API writes
            "ConfigProfiles": replace(
                table(tables.config, keys.state),
                conditions={
                    "ForAllValues:StringLike": {
                        "dynamodb:LeadingKeys": [f"{ACCOUNT_PREFIX}*", CATALOG_PARTITION]
                    }
                },
            ),
            # the customer's own thresholds: only items under their partition key prefix
            "ConfigThresholds": replace(
                table(tables.config, keys.state),
                conditions={
                    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{THRESHOLDS_PREFIX}*"]}
                },
            ),
            "Invoices": table(tables.invoices, keys.invoices),
            "CustomerKeys": table(self.customer_api.keys_table, keys.state),
            "Quarantine": objects(ingest.quarantine, QUARANTINE_PREFIX, keys.usage),
            "QuarantineStaged": objects(ingest.quarantine, STAGED_PREFIX, keys.usage),
            "QuarantineIndex": objects(ingest.quarantine, QUARANTINE_INDEX_PREFIX, keys.usage),
            "InvoiceDocuments": objects(inv.bucket, INVOICE_PREFIX, keys.invoices),
            "RunFiles": objects(inv.run_bucket, RUNS_PREFIX, keys.state),
            # listing a run's folder: the bucket, for keys under the runs' prefix only
            "RunFolders": Store(
                [inv.run_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{RUNS_PREFIX}*"]}},
            ),
            "NewInvoiceDocuments": replace(
                objects(inv.bucket, INVOICE_PREFIX, keys.invoices),
                conditions={"Null": {"s3:if-none-match": "false"}},
            ),
            "UsageStream": Store(
                [ingest.stream.stream_arn],
                keys.usage,
                "kinesis",
                {
                    "StringEquals": {
                        "kms:EncryptionContext:aws:kinesis:arn": ingest.stream.stream_arn
                    }
                },
            ),
            "RatingFailures": queue(ingest.rating_failures),
            "AlertFailures": queue(self.alerts.failures),
            "ScheduleFailures": queue(inv.schedule_failures),
            "EmailEventFailures": queue(inv.email_event_failures),
            "WarehouseRowFailures": queue(self.warehouse_feed.failures),
            "WebhookEvents": queue(self.webhooks.queue),
            # the webhook endpoints only (billing.store.webhook_endpoints), not the catalog
            "ConfigWebhooks": replace(
                table(tables.config, keys.state),
                conditions={
                    "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [WEBHOOKS_PARTITION]}
                },
            ),
            "WebhookSecrets": Store(
                [self.webhooks.secret_arns],
                keys.state,
                "secretsmanager",
                {"StringLike": {"kms:EncryptionContext:SecretARN": self.webhooks.secret_arns}},
            ),
            # the warehouse's delivery streams (buffered under an AWS-owned key)
            "WarehouseStreams": Store(self.warehouse_feed.stream_arns()),
            "DomainEvents": Store([inv.bus.event_bus_arn]),
            "InvoiceRun": Store(
                [inv.state_machine.state_machine_arn],
                keys.state,
                "states",
                {
                    "StringEquals": {
                        "kms:EncryptionContext:aws:states:stateMachineArn": (
                            inv.state_machine.state_machine_arn
                        )
                    }
                },
            ),
            "Email": Store(
                inv.email_identities(self.sender.value_as_string),
                conditions={"StringEquals": {"ses:FromAddress": self.sender.value_as_string}},
            ),
            # ses:GetAccount takes no resource: the account's own sending quota.
            "SesAccount": Store(["*"]),
        }
        permissions.apply(
            self,
            {
                "rate_usage": ingest.rater,
                "archive_records": ingest.archiver,
                "warehouse_records": self.warehouse.processor,
                "warehouse_rows": self.warehouse_feed.handler,
                "list_due": inv.list_due,
                "issue_invoices": inv.issue_invoices,
                "send_invoices": inv.send_invoices,
                "report_run": inv.report_run,
                "email_events": inv.email_events,
                "start_invoice_run": inv.start_invoice_run,
                "usage_api": self.api.handler,
                "operator_api": self.api.operator_handler,
                "customer_api": self.customer_api.handler,
                "customer_authorizer": self.customer_api.authorizer_function,
                "spend_alerts": self.alerts.handler,
                "deliver_webhooks": self.webhooks.handler,
            },
            stores,
        )

    def _outputs(self) -> None:
        """What producers, operators and the `billing` command find by DescribeStacks."""
        keys = STACK_OUTPUTS
        values = {
            keys.usage_stream_name: self.ingest.stream.stream_name,
            keys.usage_stream_arn: self.ingest.stream.stream_arn,
            keys.ledger_table: self.ledger.ledger.table_name,
            keys.config_table: self.ledger.config.table_name,
            keys.invoices_table: self.ledger.invoices.table_name,
            keys.invoice_bucket: self.invoicing.bucket.bucket_name,
            keys.quarantine_bucket: self.ingest.quarantine.bucket_name,
            keys.archive_bucket: self.ingest.archive.bucket_name,
            keys.invoice_state_machine: self.invoicing.state_machine.state_machine_arn,
            keys.send_invoices_function: self.invoicing.send_invoices.function.function_name,
            keys.event_bus: self.invoicing.bus.event_bus_name,
            keys.usage_api_url: self.api.api.url,
            keys.customer_api_url: self.customer_api.api.url,
            keys.customer_keys_table: self.customer_api.keys_table.table_name,
            keys.customer_usage_plan: self.customer_api.usage_plan.usage_plan_id,
            keys.warehouse_database: self.warehouse.database_name,
            keys.warehouse_workgroup: self.warehouse.workgroup.ref,
            keys.warehouse_query_policy: self.warehouse.query_policy.managed_policy_arn,
            keys.webhook_secrets_key: self.security.keys.state.key_arn,
        }
        for key, value in values.items():
            CfnOutput(self, key, value=value)
