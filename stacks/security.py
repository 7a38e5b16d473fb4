"""The project's customer-managed KMS key: every store and log group is encrypted with it.

Also the bucket every other bucket writes its server access logs to.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack, aws_iam, aws_kms, aws_s3
from constructs import Construct

from stacks.settings import Stage


class Security(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = aws_kms.Key(
            self,
            "DataKey",
            description="Encrypts usage, aggregates, invoices and logs of usage billing",
            enable_key_rotation=True,
            removal_policy=stage.removal_policy,
        )
        # CloudWatch Logs encrypts log groups with the key only if the key policy lets the
        # service do so; the condition keeps it to this account's log groups in this region.
        self.key.add_to_resource_policy(
            aws_iam.PolicyStatement(
                sid="CloudWatchLogsEncryptsThisAccountsLogGroups",
                principals=[aws_iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        # Alarms publish to the encrypted alarm topic: CloudWatch needs to use the key.
        self.key.add_to_resource_policy(
            aws_iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToTheEncryptedTopic",
                principals=[aws_iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )

        # S3 server access logs can only be delivered to a bucket encrypted with S3-managed
        # keys (SSE-S3), not SSE-KMS: this is the one store not under the project's key.
        self.access_logs = aws_s3.Bucket(
            self,
            "AccessLogs",
            encryption=aws_s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=aws_s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=aws_s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            removal_policy=stage.removal_policy,
            auto_delete_objects=False,
            lifecycle_rules=[
                aws_s3.LifecycleRule(
                    id="ExpireAccessLogs",
                    expiration=Duration.days(400 if stage.is_production else 90),
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
        )
