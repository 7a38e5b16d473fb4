"""The stack only wires constructs together, one per concern."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CfnParameter, Stack
from constructs import Construct

from billing.resources import STACK_OUTPUTS
from stacks.alerts import SpendAlerts
from stacks.api import UsageApi
from stacks.ingest import Ingest
from stacks.invoicing import Invoicing
from stacks.layer import BillingLayer
from stacks.ledger import Ledger
from stacks.monitoring import Monitoring
from stacks.security import Security
from stacks.settings import Stage

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
        key = self.security.key
        access_logs = self.security.access_logs
        layer = BillingLayer(self, "BillingLayer").layer
        self.ledger = Ledger(self, "Tables", key=key, stage=stage)
        self.ingest = Ingest(
            self,
            "Ingest",
            key=key,
            access_logs=access_logs,
            layer=layer,
            ledger=self.ledger,
            stage=stage,
        )
        self.invoicing = Invoicing(
            self,
            "Invoicing",
            key=key,
            access_logs=access_logs,
            layer=layer,
            ledger=self.ledger,
            sender=self.sender.value_as_string,
            stage=stage,
        )
        self.api = UsageApi(
            self,
            "Api",
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
                inv.list_due,
                inv.issue_invoices,
                inv.send_invoices,
                inv.report_run,
                inv.start_invoice_run,
                self.api.handler,
                self.alerts.handler,
            ],
            failure_queues=[
                self.ingest.rating_failures,
                inv.schedule_failures,
                self.alerts.failures,
            ],
            state_machine=inv.state_machine,
            api=self.api.api,
        )
        self._outputs()

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
            keys.event_bus: self.invoicing.bus.event_bus_name,
            keys.usage_api_url: self.api.api.url,
        }
        for key, value in values.items():
            CfnOutput(self, key, value=value)
