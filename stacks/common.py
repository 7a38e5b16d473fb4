"""The stores every construct builds the same way: encrypted with the project's key, TLS
only, private, logged; and the functions, each with its own role and log group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from aws_cdk import (
    Acknowledgment,
    CfnElement,
    Duration,
    Stack,
    Validations,
    aws_iam,
    aws_kms,
    aws_lambda,
    aws_logs,
    aws_s3,
    aws_sqs,
)
from constructs import Construct, IConstruct

from stacks.settings import ARCHITECTURE, FUNCTIONS_SOURCE, RUNTIME, FunctionSettings, Stage


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Accept one cdk-nag finding on this construct (and its children), with the reason."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id of a construct's resource, as cdk-nag findings name it."""
    default_child = construct.node.default_child
    assert isinstance(default_child, CfnElement), f"{construct.node.path} has no resource"
    return Stack.of(construct).get_logical_id(default_child)


def acknowledge_object_prefix(scope: IConstruct, bucket: aws_s3.IBucket, prefix: str) -> None:
    acknowledge(
        scope,
        f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical_id(bucket)}.Arn>/{prefix}*]",
        f"Objects are keyed by account, period or stream position under {prefix}: the "
        "function may touch that prefix of this one bucket",
    )


def colder_with_age(
    rule_id: str,
    *,
    infrequent_access_after: Duration,
    glacier_after: Duration,
    noncurrent_kept: Duration | None,
) -> aws_s3.LifecycleRule:
    """Objects kept for good, moved to cheaper storage classes as they age."""
    return aws_s3.LifecycleRule(
        id=rule_id,
        transitions=[
            aws_s3.Transition(
                storage_class=aws_s3.StorageClass.INFREQUENT_ACCESS,
                transition_after=infrequent_access_after,
            ),
            aws_s3.Transition(
                storage_class=aws_s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                transition_after=glacier_after,
            ),
        ],
        noncurrent_version_expiration=noncurrent_kept,
        abort_incomplete_multipart_upload_after=Duration.days(7),
    )


def secure_bucket(
    scope: Construct,
    construct_id: str,
    *,
    key: aws_kms.IKey,
    access_logs: aws_s3.IBucket,
    stage: Stage,
    lifecycle_rules: Sequence[aws_s3.LifecycleRule],
    object_lock: aws_s3.ObjectLockRetention | None = None,
) -> aws_s3.Bucket:
    return aws_s3.Bucket(
        scope,
        construct_id,
        encryption=aws_s3.BucketEncryption.KMS,
        encryption_key=key,
        # One data key per bucket and hour instead of a KMS call per object.
        bucket_key_enabled=True,
        enforce_ssl=True,
        block_public_access=aws_s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=aws_s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=f"{construct_id.lower()}/",
        lifecycle_rules=list(lifecycle_rules),
        removal_policy=stage.removal_policy,
        object_lock_enabled=object_lock is not None or None,
        object_lock_default_retention=object_lock,
    )


def failure_queue(
    scope: Construct, construct_id: str, *, key: aws_kms.IKey, stage: Stage
) -> aws_sqs.Queue:
    """Where a consumer puts what it gave up on; kept 14 days, the most SQS allows, and
    alarmed on as soon as it holds anything (stacks/monitoring.py)."""
    queue = aws_sqs.Queue(
        scope,
        construct_id,
        encryption=aws_sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=Duration.days(14),
        removal_policy=stage.removal_policy,
    )
    acknowledge(
        queue,
        "AwsSolutions::AwsSolutions-SQS3",
        "This queue is itself a failure destination; what reaches it alarms at once",
    )
    return queue


def encrypted_log_group(
    scope: Construct, construct_id: str, *, key: aws_kms.IKey, stage: Stage
) -> aws_logs.LogGroup:
    return aws_logs.LogGroup(
        scope,
        construct_id,
        encryption_key=key,
        retention=stage.log_retention,
        removal_policy=stage.removal_policy,
    )


# Powertools' tracer stores a traced function's return value and exception as X-Ray
# metadata by default: usage reports, invoice JSON and error messages naming accounts would
# sit in X-Ray, outside the project's keys. Off for every function, whatever its decorators
# say (the handlers' own `capture_response` arguments are left at their default).
TRACER_ENVIRONMENT: Final = {
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
    "POWERTOOLS_TRACER_CAPTURE_ERROR": "false",
}


class HandlerFunction(Construct):
    """One handler (functions/<folder>/app.py) on the billing layer, with a role of its own
    that holds only its log group until grants are added."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: FunctionSettings,
        layer: aws_lambda.ILayerVersion,
        key: aws_kms.IKey,
        stage: Stage,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = encrypted_log_group(self, "Logs", key=key, stage=stage)
        self.role = aws_iam.Role(
            self,
            "Role",
            assumed_by=aws_iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"The {settings.folder} function's own role",
        )
        # No managed AWSLambdaBasicExecutionRole (logs:* on every log group): the role's one
        # policy, its log group, X-Ray and the calls its code makes, is written out by
        # stacks/permissions.py once the stores exist.
        self.function = aws_lambda.Function(
            self,
            "Function",
            description=settings.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler="app.handler",
            code=aws_lambda.Code.from_asset(
                str(FUNCTIONS_SOURCE / settings.folder), exclude=["__pycache__", "*.pyc"]
            ),
            layers=[layer],
            memory_size=settings.memory_mb,
            timeout=settings.timeout,
            role=self.role,
            log_group=self.log_group,
            tracing=aws_lambda.Tracing.ACTIVE,
            environment={**environment, **TRACER_ENVIRONMENT},
            environment_encryption=key,
        )
        acknowledge(
            self,
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            "X-Ray's PutTraceSegments and PutTelemetryRecords take no resource-level "
            "permissions: active tracing needs Resource '*'",
        )
        acknowledge(
            self.function,
            "AwsSolutions::AwsSolutions-L1",
            "Python 3.12 is pinned on purpose: the layer's compiled wheels (pydantic-core, "
            "Pillow) are built and tested for cp312 on arm64 (stacks/settings.py)",
        )
