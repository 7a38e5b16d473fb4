"""Signed webhooks (docs/webhooks.md): a rule on the domain-event bus puts the events an
endpoint may subscribe to on a queue (KMS); `deliver_webhooks` fans each out into one
message per endpoint registered for it, on the same queue, then signs and POSTs each of
those to its endpoint, and delays one its endpoint refused by the backoff of
billing.core.webhooks.payload; after MAX_ATTEMPTS receives (more than 24 hours) SQS moves it to
the dead-letter queue, which is alarmed (stacks/monitoring.py).

EventBridge's API destinations cannot sign each request with a per-endpoint HMAC, hence
the function. Endpoint secrets are created by `billing webhooks add` in Secrets Manager
under the state key, named under `secret_prefix(config table)`: the template holds no
secret, only the right to read those names."""

from __future__ import annotations

from aws_cdk import (
    ArnFormat,
    Duration,
    Stack,
    aws_events,
    aws_events_targets,
    aws_kms,
    aws_lambda,
    aws_lambda_event_sources,
    aws_sqs,
)
from constructs import Construct

from billing.core.webhooks.payload import EVENT_TYPES, MAX_ATTEMPTS
from billing.store.events import SOURCE
from billing.store.webhook_endpoints import secret_prefix
from billing.webhooks.settings import WEBHOOK_QUEUE_ENV
from stacks.common import HandlerFunction, acknowledge, failure_queue, logical_id
from stacks.ledger import Ledger
from stacks.settings import DELIVER_WEBHOOKS, WEBHOOK_QUEUE_VISIBILITY, Stage

# CDK's feature flag: an encrypted queue's target grants its key to this account's rules only.
EVENTS_TARGET_QUEUE_SAME_ACCOUNT = "@aws-cdk/aws-events:eventsTargetQueueSameAccount"


class Webhooks(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: aws_kms.IKey,
        layer: aws_lambda.ILayerVersion,
        ledger: Ledger,
        bus: aws_events.IEventBus,
        stage: Stage,
    ) -> None:
        super().__init__(scope, construct_id)
        # The rule's target grants EventBridge the queue's key (to encrypt what it sends):
        # with this flag only for this account's rules, else with no condition at all.
        self.node.set_context(EVENTS_TARGET_QUEUE_SAME_ACCOUNT, True)
        self.dead_letters = failure_queue(self, "WebhookDeadLetters", key=key, stage=stage)
        self.queue = aws_sqs.Queue(
            self,
            "WebhookEvents",
            encryption=aws_sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            # longer than the retries' span, so no message expires before its last attempt
            retention_period=Duration.days(4),
            visibility_timeout=WEBHOOK_QUEUE_VISIBILITY,
            dead_letter_queue=aws_sqs.DeadLetterQueue(
                queue=self.dead_letters, max_receive_count=MAX_ATTEMPTS
            ),
            removal_policy=stage.removal_policy,
        )
        self.rule = aws_events.Rule(
            self,
            "DomainEventsToWebhooks",
            event_bus=bus,
            description="The domain events webhook endpoints may subscribe to",
            event_pattern=aws_events.EventPattern(source=[SOURCE], detail_type=list(EVENT_TYPES)),
            targets=[
                aws_events_targets.SqsQueue(
                    self.queue,
                    dead_letter_queue=self.dead_letters,
                    retry_attempts=185,
                    max_event_age=Duration.hours(24),
                )
            ],
        )
        self.handler = HandlerFunction(
            self,
            "DeliverWebhooks",
            settings=DELIVER_WEBHOOKS,
            layer=layer,
            key=key,
            stage=stage,
            environment={**ledger.environment(), WEBHOOK_QUEUE_ENV: self.queue.queue_url},
        )
        self.handler.function.add_event_source(
            aws_lambda_event_sources.SqsEventSource(
                self.queue, batch_size=1, report_batch_item_failures=True
            )
        )
        self.secret_arns = Stack.of(self).format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{secret_prefix(ledger.config.table_name)}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        config = logical_id(ledger.config)
        acknowledge(
            self.handler,
            "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:"
            f"<AWS::Region>:<AWS::AccountId>:secret:{secret_prefix(f'<{config}>')}*]",
            "The endpoints' secrets are created by `billing webhooks add`, one per endpoint, "
            "after deploy: the deliverer reads those under the deployment's prefix, no other",
        )
