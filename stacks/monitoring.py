"""Monitoring: alarms on what must never go unseen, an encrypted topic they notify, and a
dashboard of the pipeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from aws_cdk import (
    Duration,
    aws_apigateway,
    aws_cloudwatch,
    aws_cloudwatch_actions,
    aws_kms,
    aws_sns,
    aws_sns_subscriptions,
    aws_sqs,
    aws_stepfunctions,
)
from constructs import Construct

from stacks.common import HandlerFunction
from stacks.settings import (
    INVOICE_RUN_SERVICE,
    METRICS_NAMESPACE,
    RATER_SERVICE,
    Stage,
)

FIVE_MINUTES = Duration.minutes(5)
ONE_MINUTE = Duration.minutes(1)
# The rater's outcome counts (functions/rate_usage publishes them with Powertools, one
# dimension: service). Replayed records are retries of records already handled.
RATER_OUTCOMES = ("EventsRated", "Duplicates", "Replayed", "Rejected")


def rater_metric(name: str, period: Duration = FIVE_MINUTES) -> aws_cloudwatch.Metric:
    return aws_cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": RATER_SERVICE},
        statistic=aws_cloudwatch.Stats.SUM,
        period=period,
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: aws_kms.IKey,
        stage: Stage,
        rater: HandlerFunction,
        stream_consumers: Sequence[HandlerFunction],
        functions: Sequence[HandlerFunction],
        failure_queues: Sequence[aws_sqs.IQueue],
        state_machine: aws_stepfunctions.StateMachine,
        api: aws_apigateway.RestApi,
        customer_api: aws_apigateway.RestApi,
        converting_streams: Mapping[str, str] = MappingProxyType({}),
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = aws_sns.Topic(
            self,
            "Alarms",
            display_name="Usage billing alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if stage.alarm_email:
            self.topic.add_subscription(aws_sns_subscriptions.EmailSubscription(stage.alarm_email))
        self._action = aws_cloudwatch_actions.SnsAction(self.topic)
        self.alarms: list[aws_cloudwatch.Alarm] = []

        # A stream consumer falls behind: the oldest record it has not read yet.
        for consumer in stream_consumers:
            self._alarm(
                f"{consumer.node.id}IteratorAge",
                consumer.function.metric(
                    "IteratorAge",
                    statistic=aws_cloudwatch.Stats.MAXIMUM,
                    period=Duration.minutes(1),
                    unit=aws_cloudwatch.Unit.MILLISECONDS,
                ),
                threshold=stage.iterator_age_alarm_seconds * 1000,
                evaluation_periods=5,
                description=f"{consumer.node.id} is behind its stream: what it derives "
                "(running charges, spend alerts) is late",
            )
        for handler in functions:
            name = handler.node.id
            self._alarm(
                f"{name}Errors",
                handler.function.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                threshold=1,
                description=f"{name} failed at least once in five minutes",
            )
            self._alarm(
                f"{name}Throttles",
                handler.function.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
                threshold=1,
                description=f"{name} was throttled: raise its concurrency or the account's",
            )
        for queue in failure_queues:
            name = queue.node.scope.node.id if queue.node.scope else queue.node.id
            self._alarm(
                f"{queue.node.id}Depth",
                queue.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic=aws_cloudwatch.Stats.MAXIMUM
                ),
                threshold=1,
                description=f"{name}: something was given up on and waits in "
                f"{queue.node.id} for an operator",
            )
        # A warehouse row its Glue table's schema refused: Firehose kept it under the error
        # prefix instead of the table (docs/warehouse.md).
        for name, delivery_stream in converting_streams.items():
            self._alarm(
                f"{name}FailedConversion",
                aws_cloudwatch.Metric(
                    namespace="AWS/Firehose",
                    metric_name="FailedConversion.Records",
                    dimensions_map={"DeliveryStreamName": delivery_stream},
                    statistic=aws_cloudwatch.Stats.SUM,
                    period=FIVE_MINUTES,
                ),
                threshold=1,
                description=f"{name}: rows the warehouse table's schema refused wait under "
                "warehouse-errors/ instead of the table",
            )
        self._alarm(
            "InvoiceRunFailed",
            state_machine.metric_failed(period=FIVE_MINUTES, statistic="Sum"),
            threshold=1,
            description="An invoice run failed: invoices may not be issued or emailed",
        )
        self._alarm(
            "InvoiceRunTimedOut",
            state_machine.metric_timed_out(period=FIVE_MINUTES, statistic="Sum"),
            threshold=1,
            description="An invoice run timed out",
        )
        # The usage API answers with server errors (its store or catalog fails).
        self._alarm(
            "UsageApiServerErrors",
            api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
            threshold=5,
            description="The usage API answered 5xx at least five times in five minutes",
        )
        # The customer API answers with server errors (its function, or the authorizer
        # unable to read the key table).
        self._alarm(
            "CustomerApiServerErrors",
            customer_api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
            threshold=5,
            description="The customer API answered 5xx at least five times in five minutes",
        )
        # Accounts the invoice run could not invoice (report_run counts them).
        self._alarm(
            "InvoicesFailed",
            aws_cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="InvoicesFailed",
                dimensions_map={"service": INVOICE_RUN_SERVICE},
                statistic=aws_cloudwatch.Stats.SUM,
                period=Duration.hours(1),
            ),
            threshold=1,
            description="The invoice run could not issue or email some invoices",
        )
        # Invoice emails our own SES account refused (paused, identity or permissions): no
        # invoice goes out until someone mends it, and no customer is told (report_run).
        self._alarm(
            "InvoiceEmailsHeld",
            aws_cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="InvoiceEmailsHeld",
                dimensions_map={"service": INVOICE_RUN_SERVICE},
                statistic=aws_cloudwatch.Stats.SUM,
                period=Duration.hours(1),
            ),
            threshold=1,
            description="SES refused invoice emails for a reason of our sending account "
            "(paused, suspended, identity or permissions): they are retried every run",
        )
        # UsageRejected summaries the bus refused (best effort: the records are rated and
        # quarantined, but a webhook receiver misses the summary).
        self._alarm(
            "RejectionSummariesUnpublished",
            rater_metric("RejectionSummariesUnpublished"),
            threshold=1,
            description="The bus refused UsageRejected summaries: webhook receivers miss "
            "them (billing rejected list still shows the records)",
        )
        # Rejected records, as a share of what the stream brought: a producer sends bad
        # events, or the catalog or accounts lack what producers use.
        outcomes = {name.lower(): rater_metric(name, ONE_MINUTE) for name in RATER_OUTCOMES}
        total = " + ".join(outcomes)
        self.rejected_percent = aws_cloudwatch.MathExpression(
            expression=f"IF(({total}) > 0, 100 * rejected / ({total}), 0)",
            using_metrics=outcomes,
            label="Rejected records (%)",
            period=Duration.minutes(1),
        )
        self._alarm(
            "RejectedRecords",
            self.rejected_percent,
            threshold=stage.rejected_percent_alarm,
            evaluation_periods=5,
            description="Too many usage records are rejected into the quarantine",
        )

        self.dashboard = aws_cloudwatch.Dashboard(
            self, "Dashboard", default_interval=Duration.hours(6)
        )
        self.dashboard.add_widgets(
            aws_cloudwatch.GraphWidget(
                title="Usage records by outcome, and rated events no charge prices",
                left=[rater_metric(name) for name in RATER_OUTCOMES],
                # Rated, but on no invoice line (docs/contract-notes.md, "Unpriced usage"):
                # a catalog or producer matter, so a graph and no alarm.
                right=[rater_metric("UnpricedEvents")],
                width=12,
            ),
            aws_cloudwatch.GraphWidget(
                title="Rater: iterator age (ms) and batch latency (ms)",
                left=[rater.function.metric("IteratorAge", statistic="Maximum")],
                right=[
                    aws_cloudwatch.Metric(
                        namespace=METRICS_NAMESPACE,
                        metric_name="BatchLatency",
                        dimensions_map={"service": RATER_SERVICE},
                        statistic="p99",
                    )
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            aws_cloudwatch.GraphWidget(
                title="Rater: DynamoDB write units and rejected share (%)",
                left=[rater_metric("WriteUnits")],
                right=[self.rejected_percent],
                width=12,
            ),
            aws_cloudwatch.GraphWidget(
                title="Invoice runs",
                left=[
                    state_machine.metric_succeeded(statistic="Sum"),
                    state_machine.metric_failed(statistic="Sum"),
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            aws_cloudwatch.GraphWidget(
                title="Function errors",
                left=[h.function.metric_errors(statistic="Sum") for h in functions],
                width=12,
            ),
            aws_cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=12),
        )

    def _alarm(
        self,
        construct_id: str,
        metric: aws_cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        evaluation_periods: int = 1,
    ) -> aws_cloudwatch.Alarm:
        alarm = aws_cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=aws_cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # No data means nothing happened (no records, no runs, no failures).
            treat_missing_data=aws_cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)
        return alarm
