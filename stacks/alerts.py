"""Spend alerts: the ledger table's stream into spend_alerts, which publishes
SpendThresholdCrossed on the domain-event bus when an account's running charges reach a
threshold (the operator's, or one the customer set), and emails the customer for theirs
(from the invoices' sender, through their configuration set)."""

from __future__ import annotations

from aws_cdk import Duration, aws_events, aws_kms, aws_lambda, aws_lambda_event_sources, aws_ses
from constructs import Construct

from billing.core.spend import SpendThresholds
from billing.settings import (
    EVENT_BUS_ENV,
    SELLER_ENV,
    SENDER_ENV,
    SES_CONFIGURATION_SET_ENV,
    SPEND_ALERT_THRESHOLDS_ENV,
    SPEND_ALERTS_STREAM_FILTER,
)
from stacks.common import HandlerFunction, acknowledge, failure_queue
from stacks.ledger import Ledger
from stacks.settings import (
    SPEND_ALERTS,
    SPEND_ALERTS_MAX_RECORD_AGE,
    SPEND_ALERTS_RETRY_ATTEMPTS,
    Stage,
)


class SpendAlerts(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: aws_kms.IKey,
        layer: aws_lambda.ILayerVersion,
        ledger: Ledger,
        bus: aws_events.IEventBus,
        sender: str,
        configuration_set: aws_ses.IConfigurationSet,
        stage: Stage,
    ) -> None:
        super().__init__(scope, construct_id)
        # Read here with the handler's own parser: a setting it would refuse at cold start
        # fails the synth instead.
        SpendThresholds.parse(stage.spend_alert_thresholds)
        self.handler = HandlerFunction(
            self,
            "SpendAlerts",
            settings=SPEND_ALERTS,
            layer=layer,
            key=key,
            stage=stage,
            environment={
                **ledger.environment(),
                EVENT_BUS_ENV: bus.event_bus_name,
                SPEND_ALERT_THRESHOLDS_ENV: stage.spend_alert_thresholds or "",
                SENDER_ENV: sender,
                SES_CONFIGURATION_SET_ENV: configuration_set.configuration_set_name,
                **({SELLER_ENV: stage.seller} if stage.seller else {}),
            },
        )
        # Its permissions (stacks/permissions.py): alert claims are items of the ledger
        # table (billing.store.alert_claims, alert_notices), the customers' thresholds items
        # of the config table (only those: dynamodb:LeadingKeys), the alerts go on the bus,
        # and customers' emails through SES as the sender, with the configuration set.

        self.failures = failure_queue(self, "AlertFailures", key=key, stage=stage)
        self.handler.function.add_event_source(
            aws_lambda_event_sources.DynamoEventSource(
                ledger.ledger,
                starting_position=aws_lambda.StartingPosition.TRIM_HORIZON,
                batch_size=100,
                max_batching_window=Duration.seconds(1),
                report_batch_item_failures=True,
                bisect_batch_on_error=True,
                retry_attempts=SPEND_ALERTS_RETRY_ATTEMPTS,
                max_record_age=SPEND_ALERTS_MAX_RECORD_AGE,
                on_failure=aws_lambda_event_sources.SqsDlq(self.failures),
                filters=[aws_lambda.FilterCriteria.filter(SPEND_ALERTS_STREAM_FILTER)],
            )
        )
        # Replaces the function's X-Ray acknowledgment: this role has one more '*'.
        acknowledge(
            self.handler,
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            "X-Ray's PutTraceSegments and PutTelemetryRecords, and the stream event source's "
            "dynamodb:ListStreams, take no resource-level permissions",
        )
