"""Ingest: the usage stream, the rater that consumes it, the quarantine for rejected
records, and the raw archive of everything the stream carried."""

from __future__ import annotations

from aws_cdk import (
    Duration,
    Stack,
    aws_iam,
    aws_kinesis,
    aws_kinesisfirehose,
    aws_kms,
    aws_lambda,
    aws_lambda_event_sources,
    aws_s3,
)
from constructs import Construct

from billing.resources import (
    QUARANTINE_BUCKET_ENV,
    RATING_BATCH_SIZE,
    RATING_BATCHING_WINDOW_SECONDS,
)
from stacks.common import (
    HandlerFunction,
    acknowledge,
    acknowledge_key_grants,
    acknowledge_object_prefix,
    colder_with_age,
    encrypted_log_group,
    failure_queue,
    logical_id,
    secure_bucket,
)
from stacks.ledger import Ledger
from stacks.settings import (
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


class Ingest(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: aws_kms.IKey,
        access_logs: aws_s3.IBucket,
        layer: aws_lambda.ILayerVersion,
        ledger: Ledger,
        stage: Stage,
    ) -> None:
        super().__init__(scope, construct_id)
        self.stream = aws_kinesis.Stream(
            self,
            "UsageStream",
            encryption=aws_kinesis.StreamEncryption.KMS,
            encryption_key=key,
            stream_mode=(
                aws_kinesis.StreamMode.PROVISIONED
                if stage.stream_shards
                else aws_kinesis.StreamMode.ON_DEMAND
            ),
            shard_count=stage.stream_shards,
            retention_period=STREAM_RETENTION,
            removal_policy=stage.removal_policy,
        )

        # Rejected records, one object each (docs/table-design.md); kept for operators a
        # year and a half, then gone: raw records may hold what a producer should not send.
        self.quarantine = secure_bucket(
            self,
            "Quarantine",
            key=key,
            access_logs=access_logs,
            stage=stage,
            lifecycle_rules=[
                aws_s3.LifecycleRule(
                    id="ExpireRejectedRecords",
                    expiration=Duration.days(548),
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
        ledger.ledger.grant_read_write_data(self.rater.function)
        ledger.config.grant_read_data(self.rater.function)
        # Rejected records are staged under staged/ and kept under rejected/
        # (billing.store.quarantine), nothing else; GetObject is what S3 asks for HeadObject
        # (is a rejection another environment decided kept?) and for copying a staged one.
        self.rater.role.add_to_principal_policy(
            aws_iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject"],
                resources=[
                    self.quarantine.arn_for_objects(f"{QUARANTINE_PREFIX}*"),
                    self.quarantine.arn_for_objects(f"{STAGED_PREFIX}*"),
                ],
            )
        )
        key.grant(self.rater.role, "kms:GenerateDataKey")
        acknowledge_object_prefix(self.rater.role, self.quarantine, QUARANTINE_PREFIX)
        acknowledge_object_prefix(self.rater.role, self.quarantine, STAGED_PREFIX)
        acknowledge_key_grants(self.rater.role)

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
            key=key,
            access_logs=access_logs,
            stage=stage,
            lifecycle_rules=[
                colder_with_age(
                    "ArchiveToColderStorage",
                    infrequent_access_after=Duration.days(30),
                    glacier_after=Duration.days(90),
                    noncurrent_kept=Duration.days(30),
                )
            ],
        )
        self.archive_errors = encrypted_log_group(self, "ArchiveLogs", key=key, stage=stage)
        self.archive_stream = aws_kinesisfirehose.DeliveryStream(
            self,
            "RawArchive",
            source=aws_kinesisfirehose.KinesisStreamSource(self.stream),
            destination=aws_kinesisfirehose.S3Bucket(
                self.archive,
                encryption_key=key,
                compression=aws_kinesisfirehose.Compression.GZIP,
                data_output_prefix="raw/!{timestamp:yyyy/MM/dd/HH}/",
                error_output_prefix="errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/",
                buffering_interval=Duration.minutes(5),
                logging_config=aws_kinesisfirehose.EnableLogging(self.archive_errors),
            ),
        )
        # One record per line: without a delimiter Firehose concatenates records, and the
        # archive could not be split back into events for a replay or an audit.
        delivery = self.archive_stream.node.default_child
        assert isinstance(delivery, aws_kinesisfirehose.CfnDeliveryStream)
        delivery.add_property_override(
            "ExtendedS3DestinationConfiguration.ProcessingConfiguration",
            {"Enabled": True, "Processors": [{"Type": "AppendDelimiterToRecord"}]},
        )
        # The Firehose construct always adds a CIDR mapping that only Redshift and Splunk
        # destinations use; unused, it fails CloudFormation's and cfn-lint's W7001.
        Stack.of(self).node.try_remove_child("@aws-cdk--aws-kinesisfirehose.CidrBlocks")
        acknowledge(
            self.archive_stream,
            "AwsSolutions::AwsSolutions-KDF1",
            "A delivery stream reading a Kinesis stream cannot have server-side encryption "
            "of its own; records are encrypted with the project's key in the stream and in "
            "the archive bucket",
        )
        for finding, why in _ARCHIVE_ROLE_FINDINGS.items():
            acknowledge(
                self.archive_stream,
                f"AwsSolutions::AwsSolutions-IAM5[{finding}]",
                f"{why} (CDK's Firehose S3 destination grant, on the archive bucket only)",
            )
        acknowledge(
            self.archive_stream,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical_id(self.archive)}.Arn>/*]",
            "Firehose writes objects under prefixes of its own choosing (date and error "
            "type) in the archive bucket, which holds nothing else",
        )
        acknowledge_key_grants(self.archive_stream.node.find_child("S3 Destination Role"))
        acknowledge(
            self.stream,
            "AwsSolutions::AwsSolutions-KDS3",
            "The project's customer-managed key is required on every store (secure by "
            "default); its cost is accepted",
        )


# What Firehose's S3 destination is granted beyond PutObject, and why it needs it.
_ARCHIVE_ROLE_FINDINGS = {
    "Action::s3:Abort*": "AbortMultipartUpload cleans up a failed large delivery",
    "Action::s3:DeleteObject*": "Firehose removes partial objects of a failed delivery",
    "Action::s3:GetBucket*": "GetBucketLocation finds the bucket's region",
    "Action::s3:GetObject*": "Firehose reads back what it delivers when it retries",
    "Action::s3:List*": "ListBucket and ListBucketMultipartUploads for retries",
}
