"""The invoice run at scale, as deployed: a Distributed Map over the manifest in the run
bucket, its concurrency from the stage, the bucket encrypted and expiring, and the
workflow's role reaching its child executions and the run bucket's two prefixes only."""

from __future__ import annotations

import json
from typing import Any

from billing.invoicing import workflow as workflows
from billing.settings import DEFAULT_RUN_CONCURRENCY, RUN_BUCKET_ENV, RUN_CONCURRENCY_ENV
from billing.store.run_files import RUNS_PREFIX
from stacks.invoicing import MAP_RESULTS_PREFIX
from tests.infra.conftest import (
    actions_of,
    logical_id,
    of_type,
    resources_of,
    role_statements,
)
from tests.infra.test_stack import arn, function_id

Resources = dict[str, Any]


def run_bucket(resources: Resources) -> str:
    return logical_id(resources, "AWS::S3::Bucket", "InvoicingInvoiceRuns")


def workflow_statements(resources: Resources) -> list[dict[str, Any]]:
    [machine] = of_type(resources, "AWS::StepFunctions::StateMachine").values()
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    return role_statements(resources, role)


def test_batches_run_as_a_distributed_map_over_the_manifest_with_the_stages_concurrency(
    resources: Resources,
) -> None:
    batches = json.loads(workflows.definition_text())["States"]["Batches"]
    # the batches come from the manifest ListDue wrote, not from the state's payload
    assert batches["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket.$": "$.manifest.bucket", "Key.$": "$.manifest.key"},
    }
    assert batches["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",  # a batch may take longer than an Express workflow's 5 min
    }
    assert "ItemsPath" not in batches
    assert "ItemBatcher" not in batches
    # as many at once as ListDue says, which is the stage's setting in every task's environment
    assert batches["MaxConcurrencyPath"] == "$.max_concurrency"
    environment = resources[function_id(resources, "list_due")]["Properties"]["Environment"]
    assert environment["Variables"][RUN_CONCURRENCY_ENV] == str(DEFAULT_RUN_CONCURRENCY)
    assert environment["Variables"][RUN_BUCKET_ENV] == {"Ref": run_bucket(resources)}
    # a child that fails does not fail the run: the report names its batch's accounts
    assert batches["ToleratedFailurePercentage"] == 100
    # the children's outputs go to S3, never into the state
    assert batches["ResultPath"] is None
    assert batches["ResultWriter"]["Parameters"] == {
        "Bucket": "${" + workflows.RUN_BUCKET_VARIABLE + "}",
        "Prefix": MAP_RESULTS_PREFIX.rstrip("/"),
    }


def test_the_run_bucket_is_encrypted_with_the_state_key_private_and_expires_its_files(
    resources: Resources,
) -> None:
    bucket = resources[run_bucket(resources)]["Properties"]
    [encryption] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    state_key = logical_id(resources, "AWS::KMS::Key", "SecurityStateKey")
    assert encryption["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": arn(state_key),
    }
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    [rule] = bucket["LifecycleConfiguration"]["Rules"]
    assert rule == {
        "Id": "RunFilesAreScratch",
        "Status": "Enabled",
        "ExpirationInDays": 30,
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }


def test_the_workflow_reaches_its_own_children_and_the_run_bucket_prefixes_only(
    resources: Resources,
) -> None:
    bucket = run_bucket(resources)

    def objects(prefix: str) -> dict[str, Any]:
        return {"Fn::Join": ["", [arn(bucket), f"/{prefix}*"]]}

    granted: dict[str, list[str]] = {}
    for statement in workflow_statements(resources):
        for action in actions_of(statement):
            if action.startswith(("s3:", "states:")):
                granted.setdefault(action, []).extend(
                    json.dumps(r, sort_keys=True) for r in resources_of(statement)
                )
    runs, results = (
        json.dumps(objects(p), sort_keys=True) for p in (RUNS_PREFIX, MAP_RESULTS_PREFIX)
    )
    assert {action: sorted(found) for action, found in granted.items()} == {
        "s3:GetObject": sorted([runs, results]),
        "s3:PutObject": sorted([runs, results]),
        "s3:ListMultipartUploadParts": [results],
        "s3:AbortMultipartUpload": [results],
        "states:StartExecution": [_states_arn("stateMachine", "UsageBilling-dev-InvoiceRun")],
        "states:DescribeExecution": [_states_arn("execution", "UsageBilling-dev-InvoiceRun/*")],
        "states:StopExecution": [_states_arn("execution", "UsageBilling-dev-InvoiceRun/*")],
    }
    # ... and uses the state key for S3 only on this bucket's objects
    [s3_key_use] = [
        s
        for s in workflow_statements(resources)
        if "kms:GenerateDataKey" in actions_of(s)
        and s.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService", {}) != {}
        and "s3." in json.dumps(s["Condition"])
    ]
    assert s3_key_use["Condition"]["StringLike"] == {
        "kms:EncryptionContext:aws:s3:arn": [arn(bucket), objects("")]
    }


def _states_arn(resource: str, name: str) -> str:
    return json.dumps(
        {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":states:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    f":{resource}:{name}",
                ],
            ]
        },
        sort_keys=True,
    )
