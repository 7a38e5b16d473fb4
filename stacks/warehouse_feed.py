"""The warehouse's tables besides raw_usage, written on AWS (docs/warehouse.md): S3 tells
EventBridge of each new object in the invoice and quarantine buckets, a rule hands those
under `invoices/` and `rejected/` to `warehouse_rows` (billing.warehouse.feed), which puts
the rows they give to one direct-PUT delivery stream per table; each converts its rows to
Parquet with its Glue table's schema, under the partition the row names (`dt`, dynamic
partitioning).
"""

from __future__ import annotations

from aws_cdk import (
    Duration,
    Stack,
    aws_events,
    aws_events_targets,
    aws_iam,
    aws_kinesisfirehose,
    aws_kms,
    aws_lambda,
    aws_lambda_destinations,
    aws_logs,
    aws_s3,
)
from constructs import Construct

from billing.settings import (
    INVOICE_BUCKET_ENV,
    QUARANTINE_BUCKET_ENV,
    WAREHOUSE_STREAM_ENVS,
)
from billing.store.quarantine import QUARANTINE_PREFIX
from billing.warehouse.tables import (
    CORRECTION_LINES,
    CORRECTIONS,
    DAILY_USAGE,
    INVOICE_LINES,
    INVOICES,
    PARTITION_KEY,
    REJECTED_RECORDS,
    WarehouseTable,
)
from stacks.common import (
    HandlerFunction,
    acknowledge,
    acknowledge_object_prefix,
    encrypted_log_group,
    failure_queue,
    logical_id,
)
from stacks.ledger import Ledger
from stacks.settings import (
    WAREHOUSE_BUFFER_MB,
    WAREHOUSE_BUFFER_SECONDS,
    WAREHOUSE_ROWS,
    Stage,
)
from stacks.warehouse import ERRORS_PREFIX, Warehouse

FED_TABLES = (
    INVOICES,
    INVOICE_LINES,
    CORRECTIONS,
    CORRECTION_LINES,
    DAILY_USAGE,
    REJECTED_RECORDS,
)
# Invoice documents lie under this prefix (billing.store.documents).
INVOICE_PREFIX = "invoices/"


def _construct_name(table: WarehouseTable) -> str:
    return "".join(part.title() for part in table.name.split("_"))


class WarehouseFeed(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        warehouse: Warehouse,
        invoice_bucket: aws_s3.IBucket,
        quarantine_bucket: aws_s3.IBucket,
        ledger: Ledger,
        layer: aws_lambda.ILayerVersion,
        state_key: aws_kms.IKey,
        stage: Stage,
    ) -> None:
        super().__init__(scope, construct_id)
        self.warehouse = warehouse
        self.log_group = encrypted_log_group(self, "DeliveryLogs", key=state_key, stage=stage)
        self.log_stream = aws_logs.LogStream(
            self, "DeliveryLog", log_group=self.log_group, removal_policy=stage.removal_policy
        )
        self.role = aws_iam.Role(
            self,
            "DeliveryRole",
            assumed_by=aws_iam.ServicePrincipal(
                "firehose.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
            description="Firehose writes the warehouse's invoice, usage and rejection tables",
        )
        policy = aws_iam.Policy(
            self,
            "DeliveryPolicy",
            roles=[self.role],
            statements=warehouse.destination_statements(
                list(FED_TABLES), self.log_group, self.log_stream, sid_prefix=""
            ),
        )
        self.streams = {table.name: self._delivery_stream(table, policy) for table in FED_TABLES}
        for prefix in (*(table.prefix for table in FED_TABLES), ERRORS_PREFIX):
            acknowledge(
                policy,
                "AwsSolutions::AwsSolutions-IAM5"
                f"[Resource::<{logical_id(warehouse.bucket)}.Arn>/{prefix}*]",
                "Firehose writes objects under prefixes of its own choosing (the day, the "
                "error type) below each table's prefix and the errors' prefix",
            )
        self.handler = HandlerFunction(
            self,
            "WarehouseRows",
            settings=WAREHOUSE_ROWS,
            layer=layer,
            key=state_key,
            stage=stage,
            environment={
                **ledger.environment(),
                INVOICE_BUCKET_ENV: invoice_bucket.bucket_name,
                QUARANTINE_BUCKET_ENV: quarantine_bucket.bucket_name,
                **{
                    WAREHOUSE_STREAM_ENVS[name]: stream.ref for name, stream in self.streams.items()
                },
            },
        )
        # It reads invoice documents and kept rejections: stacks/permissions.py.
        acknowledge_object_prefix(self.handler, invoice_bucket, INVOICE_PREFIX)
        acknowledge_object_prefix(self.handler, quarantine_bucket, QUARANTINE_PREFIX)
        self._notifications(invoice_bucket, quarantine_bucket, state_key, stage)

    def named_streams(self) -> dict[str, aws_kinesisfirehose.CfnDeliveryStream]:
        """The delivery streams by their tables' construct names (InvoiceLines, ...)."""
        return {_construct_name(t): self.streams[t.name] for t in FED_TABLES}

    def stream_arns(self) -> list[str]:
        return [stream.attr_arn for stream in self.streams.values()]

    def _notifications(
        self,
        invoice_bucket: aws_s3.IBucket,
        quarantine_bucket: aws_s3.IBucket,
        key: aws_kms.IKey,
        stage: Stage,
    ) -> None:
        """S3's Object Created of the two buckets through EventBridge (set on the buckets'
        own resources: CDK's notifications need a custom resource of their own), and a rule
        on the default bus handing the documents to warehouse_rows."""
        for bucket in (invoice_bucket, quarantine_bucket):
            cfn_bucket = bucket.node.default_child
            assert isinstance(cfn_bucket, aws_s3.CfnBucket)
            cfn_bucket.add_property_override(
                "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
            )
        self.failures = failure_queue(self, "WarehouseRowFailures", key=key, stage=stage)
        # EventBridge invokes asynchronously: a document the function still fails on after
        # Lambda's retries is kept in the failure queue (alarmed), never dropped.
        self.handler.function.configure_async_invoke(
            on_failure=aws_lambda_destinations.SqsDestination(self.failures),
            retry_attempts=2,
            max_event_age=Duration.hours(6),
        )
        aws_events.Rule(
            self,
            "NewDocumentsRule",
            description="New invoice and quarantine documents, to warehouse_rows",
            event_pattern=aws_events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [invoice_bucket.bucket_name, quarantine_bucket.bucket_name]},
                    "object": {"key": [{"prefix": INVOICE_PREFIX}, {"prefix": QUARANTINE_PREFIX}]},
                },
            ),
            targets=[aws_events_targets.LambdaFunction(self.handler.function)],
        )

    def _delivery_stream(
        self, table: WarehouseTable, policy: aws_iam.Policy
    ) -> aws_kinesisfirehose.CfnDeliveryStream:
        cfn = aws_kinesisfirehose.CfnDeliveryStream
        warehouse = self.warehouse
        role_arn = self.role.role_arn
        stream = cfn(
            self,
            f"{_construct_name(table)}Delivery",
            delivery_stream_type="DirectPut",
            # Rows wait in Firehose's buffer under an AWS-owned key; they land in the bucket
            # under the warehouse key.
            delivery_stream_encryption_configuration_input=(
                cfn.DeliveryStreamEncryptionConfigurationInputProperty(key_type="AWS_OWNED_CMK")
            ),
            extended_s3_destination_configuration=cfn.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=warehouse.bucket.bucket_arn,
                role_arn=role_arn,
                # The row's own day (billing.warehouse.rows: `dt` in each line).
                prefix=f"{table.prefix}{PARTITION_KEY}=!{{partitionKeyFromQuery:{PARTITION_KEY}}}/",
                error_output_prefix=(
                    f"{ERRORS_PREFIX}{table.name}/!{{firehose:error-output-type}}/"
                    "!{timestamp:yyyy/MM/dd}/"
                ),
                buffering_hints=cfn.BufferingHintsProperty(
                    interval_in_seconds=WAREHOUSE_BUFFER_SECONDS, size_in_m_bs=WAREHOUSE_BUFFER_MB
                ),
                compression_format="UNCOMPRESSED",
                encryption_configuration=cfn.EncryptionConfigurationProperty(
                    kms_encryption_config=cfn.KMSEncryptionConfigProperty(
                        awskms_key_arn=warehouse.key.key_arn
                    )
                ),
                cloud_watch_logging_options=cfn.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.log_group.log_group_name,
                    log_stream_name=self.log_stream.log_stream_name,
                ),
                dynamic_partitioning_configuration=cfn.DynamicPartitioningConfigurationProperty(
                    enabled=True,
                    retry_options=cfn.RetryOptionsProperty(duration_in_seconds=300),
                ),
                processing_configuration=cfn.ProcessingConfigurationProperty(
                    enabled=True,
                    processors=[
                        cfn.ProcessorProperty(
                            type="MetadataExtraction",
                            parameters=[
                                cfn.ProcessorParameterProperty(
                                    parameter_name="MetadataExtractionQuery",
                                    parameter_value=f"{{{PARTITION_KEY}: .{PARTITION_KEY}}}",
                                ),
                                cfn.ProcessorParameterProperty(
                                    parameter_name="JsonParsingEngine",
                                    parameter_value="JQ-1.6",
                                ),
                            ],
                        )
                    ],
                ),
                data_format_conversion_configuration=warehouse.conversion(table, role_arn),
            ),
        )
        # Firehose checks its role when the delivery stream is created.
        stream.node.add_dependency(policy)
        return stream
