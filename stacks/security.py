"""The project's customer-managed KMS keys, one per class of data, and the bucket every other
bucket writes its server access logs to.

- `invoices`: invoice documents and invoice records, what customers are billed.
- `usage`: raw usage, as producers sent it: the stream, the raw archive, the quarantine.
- `state`: operational state: ledgers, configuration, logs, queues, topic, event bus,
  schedule, workflow history and the functions' environment.

Each key's policy separates administration from use. This account's IAM principals may
administer a key (describe, enable, rotate, tag, change its policy or schedule its deletion:
what their IAM policies allow) but none may encrypt or decrypt with it directly: use goes
only through the AWS services that store that class of data (kms:ViaService), on behalf of
a principal of this account whose own IAM policy allows it, and the functions' policies add
the service and the resource's encryption context (stacks/permissions.py). The log and
alarm services use the state key under conditions of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from aws_cdk import ArnFormat, Duration, Stack, aws_iam, aws_kms, aws_s3
from constructs import Construct

from stacks.settings import Stage

# What administering a key means here: everything but the cryptographic operations.
KEY_ADMINISTRATION: Final = (
    # CreateAlias, not Create*: kms:CreateGrant would let an administrator grant itself the
    # key's use outside its services (grants are for the services: see KEY_USE).
    "kms:CreateAlias",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
)
# What the services that store a class of data do with its key on a principal's behalf
# (DynamoDB and Lambda hold grants; S3, Kinesis, SQS, SNS and Step Functions call KMS).
KEY_USE: Final = (
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
    "kms:CreateGrant",
    "kms:DescribeKey",
)


@dataclass(frozen=True)
class DataKeys:
    invoices: aws_kms.Key
    usage: aws_kms.Key
    state: aws_kms.Key
    # The warehouse's tables and query results (stacks/warehouse.py): raw usage and invoice
    # amounts side by side.
    warehouse: aws_kms.Key

    def all(self) -> list[aws_kms.Key]:
        return [self.invoices, self.usage, self.state, self.warehouse]


def data_key(
    scope: Construct, construct_id: str, *, description: str, services: Sequence[str], stage: Stage
) -> aws_kms.Key:
    stack = Stack.of(scope)
    policy = aws_iam.PolicyDocument(
        statements=[
            aws_iam.PolicyStatement(
                sid="AdministeredByThisAccountsIam",
                principals=[aws_iam.AccountRootPrincipal()],
                actions=list(KEY_ADMINISTRATION),
                resources=["*"],  # in a key policy, "*" is this key
            ),
            aws_iam.PolicyStatement(
                sid="UsedOnlyThroughItsServices",
                principals=[aws_iam.AccountRootPrincipal()],
                actions=list(KEY_USE),
                resources=["*"],
                conditions={
                    "StringEquals": {
                        "kms:CallerAccount": stack.account,
                        "kms:ViaService": [f"{s}.{stack.region}.amazonaws.com" for s in services],
                    }
                },
            ),
        ]
    )
    return aws_kms.Key(
        scope,
        construct_id,
        description=description,
        enable_key_rotation=True,
        removal_policy=stage.removal_policy,
        policy=policy,
    )


class Security(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.keys = DataKeys(
            invoices=data_key(
                self,
                "InvoiceKey",
                description="Usage billing: invoice documents and records",
                services=["s3", "dynamodb"],
                stage=stage,
            ),
            usage=data_key(
                self,
                "UsageKey",
                description="Usage billing: raw usage (stream, raw archive, quarantine)",
                services=["kinesis", "s3"],
                stage=stage,
            ),
            state=data_key(
                self,
                "StateKey",
                description="Usage billing: ledgers, configuration, logs, queues, events, "
                "workflow history and the functions' environment",
                services=["dynamodb", "lambda", "sqs", "sns", "states", "scheduler"],
                stage=stage,
            ),
            warehouse=data_key(
                self,
                "WarehouseKey",
                description="Usage billing: the warehouse's tables and query results",
                # S3 encrypts and decrypts the tables' files and the results for Firehose
                # and Athena alike; Athena itself only for encrypted results it handles.
                services=["s3", "athena"],
                stage=stage,
            ),
        )
        key = self.keys.state
        # CloudWatch Logs encrypts log groups with the key only if the key policy lets the
        # service do so; the condition keeps it to this account's log groups in this region.
        key.add_to_resource_policy(
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
        key.add_to_resource_policy(
            aws_iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToTheEncryptedTopic",
                principals=[aws_iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )

        # S3 server access logs can only be delivered to a bucket encrypted with S3-managed
        # keys (SSE-S3), not SSE-KMS: this is the one store not under a project key.
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
