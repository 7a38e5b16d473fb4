"""Ingest: the usage stream, the rater that consumes it, the quarantine for rejected
records, and the raw archive of everything the stream carried."""

from __future__ import annotations

from aws_cdk import (
    ArnFormat,
    Duration,
    Stack,
    aws_iam,
    aws_kinesis,
    aws_kinesisfirehose,
    aws_lambda,
    aws_lambda_event_sources,
    aws_logs,
    aws_s3,
)
from constructs import Construct

from billing.settings import (
    QUARANTINE_BUCKET_ENV,
    RATING_BATCH_SIZE,
    RATING_BATCHING_WINDOW_SECONDS,
)
from stacks.common import (
    HandlerFunction,
    acknowledge,
    acknowledge_object_prefix,
    colder_with_age,
    encrypted_log_group,
    failure_queue,
    logical_id,
    secure_bucket,
)
from stacks.ledger import Ledger
from stacks.security import DataKeys
from stacks.settings import (
    ARCHIVE_PROCESSOR_BUFFER_MB,
    ARCHIVE_PROCESSOR_BUFFER_SECONDS,
    ARCHIVE_RECORDS,
    RATE_USAGE,
    RATER_MAX_RECORD_AGE,
    RATER_RETRY_ATTEMPTS,
    STREAM_RETENTION,
    Stage,
)

# Every rejected record's object lives under this prefix (billing.store.quarantine; the
# infra tests hold the two together).
QUARANTINE_PREFIX = "rejected/"
STAGED_PREFIX = "staged/"
# ... and its index entry under this one (billing.store.quarantine_index).
QUARANTINE_INDEX_PREFIX = "index/"


class Ingest(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        keys: DataKeys,
        access_logs: aws_s3.IBucket,
        layer: aws_lambda.ILayerVersion,
        ledger: Ledger,
        stage: Stage,
    ) -> None:
        super().__init__(scope, construct_id)
        key = keys.state
        self.stream = aws_kinesis.Stream(
            self,
            "UsageStream",
            encryption=aws_kinesis.StreamEncryption.KMS,
            encryption_key=keys.usage,
            stream_mode=(
                aws_kinesis.StreamMode.PROVISIONED
                if stage.stream_shards
                else aws_kinesis.StreamMode.ON_DEMAND
            ),
            shard_count=stage.stream_shards,
            retention_period=STREAM_RETENTION,
            removal_policy=stage.removal_policy,
        )

        # Rejected records, one object each (docs/table-design.md), their index and the
        # markers of what was resent or billed by a correction: kept as long as the
        # archive keeps every record (for ever), because a re-rate of any period takes the
        # rater's verdicts from here (docs/corrections.md); the raw bytes are in the
        # archive as long anyway.
        self.quarantine = secure_bucket(
            self,
            "Quarantine",
            key=keys.usage,
            access_logs=access_logs,
            stage=stage,
            lifecycle_rules=[
                aws_s3.LifecycleRule(
                    id="TidyRejectedRecords",
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
                # Documents staged before the ledger write that decides them (kept from
                # there once it landed): needed for minutes, kept a week.
                aws_s3.LifecycleRule(
                    id="ExpireStagedRecords", prefix=STAGED_PREFIX, expiration=Duration.days(7)
                ),
            ],
        )

        self.rater = HandlerFunction(
            self,
            "RateUsage",
            settings=RATE_USAGE,
            layer=layer,
            key=key,
            stage=stage,
            environment={
                **ledger.environment(),
                QUARANTINE_BUCKET_ENV: self.quarantine.bucket_name,
            },
        )
        # Its permissions: stacks/permissions.py (objects only under rejected/, staged/ and
        # index/).
        acknowledge_object_prefix(self.rater, self.quarantine, QUARANTINE_PREFIX)
        acknowledge_object_prefix(self.rater, self.quarantine, STAGED_PREFIX)
        acknowledge_object_prefix(self.rater, self.quarantine, QUARANTINE_INDEX_PREFIX)

        # What the event source mapping gave up on (after retries, or too old): the
        # batch's shard and sequence range, to replay from the stream or the archive.
        self.rating_failures = failure_queue(self, "RatingFailures", key=key, stage=stage)
        self.rater.function.add_event_source(
            aws_lambda_event_sources.KinesisEventSource(
                self.stream,
                starting_position=aws_lambda.StartingPosition.TRIM_HORIZON,
                batch_size=RATING_BATCH_SIZE,
                max_batching_window=Duration.seconds(RATING_BATCHING_WINDOW_SECONDS),
                parallelization_factor=stage.parallelization_factor,
                report_batch_item_failures=True,
                bisect_batch_on_error=True,
                retry_attempts=RATER_RETRY_ATTEMPTS,
                max_record_age=RATER_MAX_RECORD_AGE,
                on_failure=aws_lambda_event_sources.SqsDlq(self.rating_failures),
            )
        )

        self.archive = secure_bucket(
            self,
            "Archive",
            key=keys.usage,
            access_logs=access_logs,
            stage=stage,
            lifecycle_rules=[
                colder_with_age(
                    "ArchiveToColderStorage",
                    infrequent_access_after=Duration.days(30),
                    # Glacier Instant Retrieval: a re-rate or an explanation reads any
                    # month back with GetObject, without a restore.
                    glacier_after=Duration.days(90),
                    noncurrent_kept=None if stage.is_production else Duration.days(30),
                )
            ],
        )
        if stage.is_production:
            # The archive is the source of truth for re-rating and explaining a bill
            # (billing.corrections): in production no principal deletes a record of it, and
            # no lifecycle rule expires one (a dev stack's archive can still be torn down).
            self.archive.add_to_resource_policy(
                aws_iam.PolicyStatement(
                    sid="RawUsageIsNeverDeleted",
                    effect=aws_iam.Effect.DENY,
                    principals=[aws_iam.AnyPrincipal()],
                    actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
                    resources=[self.archive.arn_for_objects("raw/*")],
                )
            )
        self._raw_archive(keys=keys, layer=layer, stage=stage)
        acknowledge(
            self.stream,
            "AwsSolutions::AwsSolutions-KDS3",
            "The project's customer-managed key is required on every store (secure by "
            "default); its cost is accepted",
        )

    def _raw_archive(
        self, *, keys: DataKeys, layer: aws_lambda.ILayerVersion, stage: Stage
    ) -> None:
        """Firehose from the stream to the archive bucket, each record framed by
        archive_records (billing.rating.archive), under a role that holds only what Firehose's
        documentation lists for a Kinesis source, a Lambda processor and an S3 destination.

        Built from the CloudFormation resource: CDK's DeliveryStream grants its S3
        destination the bucket's read-write (delete, retention, legal hold, tagging), and
        its roles trust Firehose without a source condition."""
        stack = Stack.of(self)
        key = keys.state
        self.archiver = HandlerFunction(
            self,
            "ArchiveRecords",
            settings=ARCHIVE_RECORDS,
            layer=layer,
            key=key,
            stage=stage,
            environment={},
        )
        self.archive_errors = encrypted_log_group(self, "ArchiveLogs", key=key, stage=stage)
        log_stream = aws_logs.LogStream(
            self,
            "ArchiveDeliveryLog",
            log_group=self.archive_errors,
            removal_policy=stage.removal_policy,
        )
        self.archive_role = aws_iam.Role(
            self,
            "ArchiveDeliveryRole",
            assumed_by=aws_iam.ServicePrincipal(
                "firehose.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description="Firehose reads the usage stream into the raw archive with this role",
        )
        via = {
            "kinesis": f"kinesis.{stack.region}.amazonaws.com",
            "s3": f"s3.{stack.region}.amazonaws.com",
        }
        policy = aws_iam.Policy(
            self,
            "ArchiveDeliveryPolicy",
            roles=[self.archive_role],
            statements=[
                aws_iam.PolicyStatement(
                    sid="ReadTheUsageStream",
                    actions=[
                        "kinesis:DescribeStream",
                        "kinesis:GetShardIterator",
                        "kinesis:GetRecords",
                        "kinesis:ListShards",
                    ],
                    resources=[self.stream.stream_arn],
                ),
                aws_iam.PolicyStatement(
                    sid="DecryptTheUsageStream",
                    actions=["kms:Decrypt"],
                    resources=[keys.usage.key_arn],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": via["kinesis"],
                            "kms:EncryptionContext:aws:kinesis:arn": self.stream.stream_arn,
                        }
                    },
                ),
                aws_iam.PolicyStatement(
                    sid="FrameEachRecord",
                    actions=["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"],
                    resources=[
                        self.archiver.function.function_arn,
                        f"{self.archiver.function.function_arn}:$LATEST",
                    ],
                ),
                aws_iam.PolicyStatement(
                    sid="FindTheArchiveBucket",
                    actions=[
                        "s3:GetBucketLocation",
                        "s3:ListBucket",
                        "s3:ListBucketMultipartUploads",
                    ],
                    resources=[self.archive.bucket_arn],
                ),
                aws_iam.PolicyStatement(
                    sid="WriteArchiveObjects",
                    actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                    resources=[self.archive.arn_for_objects("*")],
                ),
                aws_iam.PolicyStatement(
                    sid="EncryptArchiveObjects",
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[keys.usage.key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": via["s3"]},
                        # With an S3 Bucket Key the context is the bucket's ARN.
                        "StringLike": {
                            "kms:EncryptionContext:aws:s3:arn": [
                                self.archive.bucket_arn,
                                self.archive.arn_for_objects("*"),
                            ]
                        },
                    },
                ),
                aws_iam.PolicyStatement(
                    sid="LogDeliveryErrors",
                    actions=["logs:PutLogEvents"],
                    resources=[
                        stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=(
                                f"{self.archive_errors.log_group_name}:log-stream:"
                                f"{log_stream.log_stream_name}"
                            ),
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    ],
                ),
            ],
        )
        cfn = aws_kinesisfirehose.CfnDeliveryStream
        self.archive_stream = cfn(
            self,
            "RawArchive",
            delivery_stream_type="KinesisStreamAsSource",
            kinesis_stream_source_configuration=cfn.KinesisStreamSourceConfigurationProperty(
                kinesis_stream_arn=self.stream.stream_arn, role_arn=self.archive_role.role_arn
            ),
            extended_s3_destination_configuration=cfn.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=self.archive.bucket_arn,
                role_arn=self.archive_role.role_arn,
                prefix="raw/!{timestamp:yyyy/MM/dd/HH}/",
                error_output_prefix="errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/",
                buffering_hints=cfn.BufferingHintsProperty(interval_in_seconds=300, size_in_m_bs=5),
                compression_format="GZIP",
                encryption_configuration=cfn.EncryptionConfigurationProperty(
                    kms_encryption_config=cfn.KMSEncryptionConfigProperty(
                        awskms_key_arn=keys.usage.key_arn
                    )
                ),
                cloud_watch_logging_options=cfn.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.archive_errors.log_group_name,
                    log_stream_name=log_stream.log_stream_name,
                ),
                # One line per record, framed by archive_records (billing.rating.archive): the
                # processor ends each frame with its line break itself.
                processing_configuration=cfn.ProcessingConfigurationProperty(
                    enabled=True,
                    processors=[
                        cfn.ProcessorProperty(
                            type="Lambda",
                            parameters=[
                                cfn.ProcessorParameterProperty(
                                    parameter_name=name, parameter_value=value
                                )
                                for name, value in (
                                    ("LambdaArn", self.archiver.function.function_arn),
                                    ("BufferSizeInMBs", str(ARCHIVE_PROCESSOR_BUFFER_MB)),
                                    (
                                        "BufferIntervalInSeconds",
                                        str(ARCHIVE_PROCESSOR_BUFFER_SECONDS),
                                    ),
                                )
                            ],
                        )
                    ],
                ),
            ),
        )
        # Firehose checks its role when the delivery stream is created.
        self.archive_stream.node.add_dependency(policy)
        acknowledge(
            self.archive_stream,
            "AwsSolutions::AwsSolutions-KDF1",
            "A delivery stream reading a Kinesis stream cannot have server-side encryption "
            "of its own; records are encrypted with the raw-usage key in the stream and in "
            "the archive bucket",
        )
        acknowledge(
            policy,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical_id(self.archive)}.Arn>/*]",
            "Firehose writes objects under prefixes of its own choosing (date and error "
            "type) in the archive bucket, which holds nothing else",
        )
