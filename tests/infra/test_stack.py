"""Properties of the synthesized stack: encryption, the rater's event source mapping,
least-privilege roles, the workflow as deployed, alarms and outputs."""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3
from aws_cdk.assertions import Match, Template

from app import build_app
from billing.core.seller import SellerSettingsError
from billing.core.spend import ThresholdsError
from billing.invoicing import workflow as workflows
from billing.settings import (
    INVOICE_STEP_TIMEOUT_SECONDS,
    INVOICE_TASK_TIMEOUT_SECONDS,
    INVOICES_TABLE,
    LEDGER_TABLE,
    RATING_BATCH_SIZE,
    RATING_BATCHING_WINDOW_SECONDS,
    SELLER_ENV,
    SENDER_ENV,
    SES_CONFIGURATION_SET_ENV,
    SES_MAX_SEND_RATE_ENV,
    SPEND_ALERT_THRESHOLDS_ENV,
    SPEND_ALERTS_STREAM_FILTER,
    STACK_NAME_PREFIX,
    STACK_OUTPUTS,
    STATE_MACHINE_ENV,
    TABLES,
)
from billing.store.documents import document_key
from billing.store.quarantine import quarantine_key
from billing.store.run_files import RUNS_PREFIX
from stacks.ingest import QUARANTINE_INDEX_PREFIX, QUARANTINE_PREFIX, STAGED_PREFIX
from stacks.invoicing import INVOICE_PREFIX
from stacks.settings import (
    FUNCTIONS_SOURCE,
    RATER_MAX_RECORD_AGE,
    RATER_RETRY_ATTEMPTS,
    SCHEDULE_INPUT,
    SPEND_ALERTS_MAX_RECORD_AGE,
    SPEND_ALERTS_RETRY_ATTEMPTS,
)
from tests.infra.conftest import (
    NO_BUNDLING,
    actions_of,
    logical_id,
    of_type,
    path_of,
    resources_of,
    role_statements,
    synthesized,
)
from tests.support.kinesis import shard

Resources = dict[str, Any]

FUNCTIONS = {
    "rate_usage": "IngestRateUsage",
    "list_due": "InvoicingListDue",
    "issue_invoices": "InvoicingIssueInvoices",
    "send_invoices": "InvoicingSendInvoices",
    "report_run": "InvoicingReportRun",
    "start_invoice_run": "InvoicingStartInvoiceRun",
    "usage_api": "ApiUsageApi",
    "operator_api": "ApiOperatorApi",
    "customer_api": "CustomerApiCustomerRoutes",
    "customer_authorizer": "CustomerApiCustomerAuthorizer",
    "spend_alerts": "AlertsSpendAlerts",
    "email_events": "InvoicingEmailEvents",
    "archive_records": "IngestArchiveRecords",
    "warehouse_records": "WarehouseWarehouseRecords",
    "warehouse_rows": "WarehouseFeedWarehouseRows",
    "deliver_webhooks": "WebhooksDeliverWebhooks",
}


def function_id(resources: Resources, name: str) -> str:
    return logical_id(resources, "AWS::Lambda::Function", f"{FUNCTIONS[name]}Function")


def role_id(resources: Resources, name: str) -> str:
    return logical_id(resources, "AWS::IAM::Role", f"{FUNCTIONS[name]}Role")


def table_id(resources: Resources, construct_id: str) -> str:
    return logical_id(resources, "AWS::DynamoDB::Table", f"Tables{construct_id}")


def arn(logical: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical, "Arn"]}


def mentions(value: Any, logical: str) -> bool:
    return logical in json.dumps(value)


# --- Encryption ---------------------------------------------------------------------------


def test_every_table_stream_queue_topic_and_bus_uses_the_key_of_its_data_class(
    resources: Resources,
    key_arn: dict[str, Any],
    invoice_key_arn: dict[str, Any],
    usage_key_arn: dict[str, Any],
) -> None:
    def table_key(props: dict[str, Any]) -> dict[str, Any]:
        return invoice_key_arn if "Invoices" in json.dumps(props["KeySchema"]) else key_arn

    invoices = table_id(resources, "Invoices")
    assert resources[invoices]["Properties"]["SSESpecification"]["KMSMasterKeyId"] == (
        invoice_key_arn
    )
    # GIVEN every store of each kind (however many there are)
    expectations = {
        "AWS::DynamoDB::Table": lambda p: (
            p["SSESpecification"]["SSEType"] == "KMS"
            and p["SSESpecification"]["KMSMasterKeyId"] in (key_arn, invoice_key_arn)
        ),
        "AWS::Kinesis::Stream": lambda p: (
            p["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": usage_key_arn}
        ),
        "AWS::SQS::Queue": lambda p: p["KmsMasterKeyId"] == key_arn,
        "AWS::SNS::Topic": lambda p: p["KmsMasterKeyId"] == key_arn,
        "AWS::Events::EventBus": lambda p: p["KmsKeyIdentifier"] == key_arn,
        "AWS::Logs::LogGroup": lambda p: p["KmsKeyId"] == key_arn,
        "AWS::Lambda::Function": lambda p: p["KmsKeyArn"] == key_arn,
        "AWS::Scheduler::Schedule": lambda p: p["KmsKeyArn"] == key_arn,
    }
    for kind, encrypted in expectations.items():
        stores = of_type(resources, kind)
        assert stores, f"no {kind} in the stack"
        # THEN each one names the key of its data class
        for name, store in stores.items():
            assert encrypted(store["Properties"]), f"{kind} {name} is not under its key"
    for name in of_type(resources, "AWS::DynamoDB::Table"):
        expected = invoice_key_arn if name == invoices else key_arn
        assert resources[name]["Properties"]["SSESpecification"]["KMSMasterKeyId"] == expected


def test_every_project_key_rotates(resources: Resources) -> None:
    keys = of_type(resources, "AWS::KMS::Key")
    assert len(keys) == 4  # invoices, raw usage, state, the warehouse
    assert all(key["Properties"]["EnableKeyRotation"] is True for key in keys.values())


def test_an_unacknowledged_cdk_nag_finding_fails_the_synth() -> None:
    # GIVEN the app as `cdk synth` builds it, plus a bucket that breaks AWS Solutions rules
    app = build_app(NO_BUNDLING)
    stack = app.node.find_child(f"{STACK_NAME_PREFIX}-dev")
    assert isinstance(stack, cdk.Stack)
    aws_s3.Bucket(stack, "NoLogsNoTls")
    # WHEN it is synthesized THEN cdk-nag stops it, naming the rule
    with pytest.raises(RuntimeError, match=r"(?s)ValidationFailed.*AwsSolutions-S1'"):
        Template.from_stack(stack)


def test_every_data_bucket_uses_its_data_class_key_and_the_log_bucket_sse_s3(
    resources: Resources, invoice_key_arn: dict[str, Any], usage_key_arn: dict[str, Any]
) -> None:
    buckets = of_type(resources, "AWS::S3::Bucket")
    access_logs = logical_id(resources, "AWS::S3::Bucket", "SecurityAccessLogs")
    for name, bucket in buckets.items():
        [rule] = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        if name == access_logs:
            # S3 delivers server access logs only to SSE-S3 buckets
            assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
        else:
            if name.startswith("InvoicingInvoiceRuns"):
                # the invoice run's scratch names accounts, as its execution history does
                key_arn = arn(logical_id(resources, "AWS::KMS::Key", "SecurityStateKey"))
            elif name.startswith("InvoicingInvoices"):
                key_arn = invoice_key_arn
            elif name.startswith("Warehouse"):
                # the warehouse's tables and query results (stacks/warehouse.py)
                key_arn = arn(logical_id(resources, "AWS::KMS::Key", "SecurityWarehouseKey"))
            else:
                key_arn = usage_key_arn
            assert rule == {
                "BucketKeyEnabled": True,
                "ServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms",
                    "KMSMasterKeyID": key_arn,
                },
            }, name
    assert {n for n in buckets if n != access_logs} == {
        logical_id(resources, "AWS::S3::Bucket", prefix)
        for prefix in (
            "IngestQuarantine",
            "IngestArchive",
            "InvoicingInvoices",
            "InvoicingInvoiceRuns",
            "WarehouseTables",
            "WarehouseQueryResults",
        )
    }


def test_buckets_are_private_versioned_tls_only_logged_and_expire_or_age(
    template: Template, resources: Resources
) -> None:
    access_logs = logical_id(resources, "AWS::S3::Bucket", "SecurityAccessLogs")
    for name, bucket in of_type(resources, "AWS::S3::Bucket").items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, name
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, name
        assert props["LifecycleConfiguration"]["Rules"], name
        if name != access_logs:
            assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": access_logs}
    # TLS only: each bucket's policy denies requests without SecureTransport
    for name in of_type(resources, "AWS::S3::Bucket"):
        template.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": {"Ref": name},
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                },
            },
        )


def test_invoices_and_the_archive_are_kept_for_good_and_rejected_records_expire(
    resources: Resources,
) -> None:
    def rules(prefix: str) -> list[dict[str, Any]]:
        bucket = resources[logical_id(resources, "AWS::S3::Bucket", prefix)]
        found: list[dict[str, Any]] = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
        return found

    [invoices] = rules("InvoicingInvoices")
    assert "ExpirationInDays" not in invoices
    assert invoices["Transitions"] == [
        {"StorageClass": "STANDARD_IA", "TransitionInDays": 90},
        {"StorageClass": "GLACIER_IR", "TransitionInDays": 365},
    ]
    [archive] = rules("IngestArchive")
    assert "ExpirationInDays" not in archive
    assert [t["TransitionInDays"] for t in archive["Transitions"]] == [30, 90]
    quarantine, staged = rules("IngestQuarantine")
    # The rater's verdicts, their index and the resend markers: kept as long as the
    # archive (a re-rate of any period reads them); only old versions go.
    assert "ExpirationInDays" not in quarantine
    assert quarantine["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    # Rejections staged before the ledger write that decides them: needed for minutes.
    assert (staged["Prefix"], staged["ExpirationInDays"]) == ("staged/", 7)


def test_firehose_archives_the_stream_encrypted_with_the_raw_usage_key(
    template: Template, resources: Resources, usage_key_arn: dict[str, Any]
) -> None:
    key_arn = usage_key_arn
    stream = logical_id(resources, "AWS::Kinesis::Stream", "IngestUsageStream")
    archive = logical_id(resources, "AWS::S3::Bucket", "IngestArchive")
    template.has_resource_properties(
        "AWS::KinesisFirehose::DeliveryStream",
        {
            "DeliveryStreamType": "KinesisStreamAsSource",
            "KinesisStreamSourceConfiguration": {"KinesisStreamARN": arn(stream)},
            "ExtendedS3DestinationConfiguration": Match.object_like(
                {
                    "BucketARN": arn(archive),
                    "CompressionFormat": "GZIP",
                    "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": key_arn}},
                    "ProcessingConfiguration": {
                        "Enabled": True,
                        "Processors": [
                            {
                                "Type": "Lambda",
                                "Parameters": Match.array_with(
                                    [
                                        {
                                            "ParameterName": "LambdaArn",
                                            "ParameterValue": arn(
                                                function_id(resources, "archive_records")
                                            ),
                                        }
                                    ]
                                ),
                            }
                        ],
                    },
                }
            ),
        },
    )


# --- Tables --------------------------------------------------------------------------------


def test_tables_follow_their_declarations_with_recovery_and_dev_removal(
    resources: Resources,
) -> None:
    for spec in TABLES:
        table = resources[table_id(resources, spec.construct_id)]
        props = table["Properties"]
        assert props["KeySchema"] == [
            {"AttributeName": spec.partition_key, "KeyType": "HASH"},
            {"AttributeName": spec.sort_key, "KeyType": "RANGE"},
        ]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        if spec.ttl_attribute:
            assert props["TimeToLiveSpecification"] == {
                "AttributeName": spec.ttl_attribute,
                "Enabled": True,
            }
        else:
            assert "TimeToLiveSpecification" not in props
        assert ("StreamSpecification" in props) == spec.stream
        # dev stacks can be torn down
        assert table["DeletionPolicy"] == "Delete"
        assert props.get("DeletionProtectionEnabled", False) is False


def test_the_ledger_has_the_sparse_due_index_its_declaration_names(resources: Resources) -> None:
    props = resources[table_id(resources, LEDGER_TABLE.construct_id)]["Properties"]
    assert props["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "due",
            "KeySchema": [
                {"AttributeName": "due_shard", "KeyType": "HASH"},
                {"AttributeName": "due_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["due_period"]},
        }
    ]
    assert {"AttributeName": "due_at", "AttributeType": "S"} in props["AttributeDefinitions"]
    for spec in TABLES:
        if spec is not LEDGER_TABLE:
            assert (
                "GlobalSecondaryIndexes"
                not in resources[table_id(resources, spec.construct_id)]["Properties"]
            )


def test_list_due_queries_only_the_due_index_and_writes_only_hints(resources: Resources) -> None:
    statements = role_statements(resources, role_id(resources, "list_due"))
    ledger = table_id(resources, LEDGER_TABLE.construct_id)
    queries = [s for s in statements if "dynamodb:Query" in actions_of(s)]
    index = {"Fn::Join": ["", [{"Fn::GetAtt": [ledger, "Arn"]}, "/index/due"]]}
    ledger_queries = [
        resource for s in queries for resource in resources_of(s) if mentions(resource, ledger)
    ]
    assert ledger_queries == [index]
    scans = [s for s in statements if "dynamodb:Scan" in actions_of(s)]
    assert not [r for s in scans for r in resources_of(s) if mentions(r, ledger)]


def test_prod_retains_its_data_and_takes_stream_shards_from_context() -> None:
    # GIVEN the prod stage, with a provisioned stream
    prod = synthesized(stage="prod", stream_shards=4).to_json()["Resources"]
    # THEN the data outlives the stack
    for spec in TABLES:
        table = prod[table_id(prod, spec.construct_id)]
        assert table["DeletionPolicy"] == "Retain"
        assert table["Properties"]["DeletionProtectionEnabled"] is True
    for kind in ("AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Kinesis::Stream"):
        for name, resource in of_type(prod, kind).items():
            assert resource["DeletionPolicy"] == "Retain", name
    # AND its stream has the shards asked for
    [stream] = of_type(prod, "AWS::Kinesis::Stream").values()
    assert stream["Properties"]["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert stream["Properties"]["ShardCount"] == 4
    # AND its logs are kept a year
    for name, group in of_type(prod, "AWS::Logs::LogGroup").items():
        assert group["Properties"]["RetentionInDays"] == 365, name


# --- The rater -----------------------------------------------------------------------------


def test_rater_reads_the_stream_in_batches_with_partial_failures_bisect_and_a_destination(
    template: Template, resources: Resources
) -> None:
    stream = logical_id(resources, "AWS::Kinesis::Stream", "IngestUsageStream")
    failures = logical_id(resources, "AWS::SQS::Queue", "IngestRatingFailures")
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": arn(stream),
            "FunctionName": {"Ref": function_id(resources, "rate_usage")},
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": RATING_BATCH_SIZE,
            "MaximumBatchingWindowInSeconds": RATING_BATCHING_WINDOW_SECONDS,
            "ParallelizationFactor": 2,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": RATER_RETRY_ATTEMPTS,
            "MaximumRecordAgeInSeconds": RATER_MAX_RECORD_AGE.to_seconds(),
            "DestinationConfig": {"OnFailure": {"Destination": arn(failures)}},
        },
    )
    assert RATER_RETRY_ATTEMPTS == 10
    assert RATER_MAX_RECORD_AGE.to_seconds() == 86400


def test_stream_is_on_demand_by_default_and_keeps_records_a_week(resources: Resources) -> None:
    [stream] = of_type(resources, "AWS::Kinesis::Stream").values()
    assert stream["Properties"]["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert "ShardCount" not in stream["Properties"]
    assert stream["Properties"]["RetentionPeriodHours"] == 168


def test_rater_writes_the_ledger_and_quarantine_reads_config_and_never_touches_invoices(
    resources: Resources,
) -> None:
    statements = role_statements(resources, role_id(resources, "rate_usage"))
    ledger = table_id(resources, LEDGER_TABLE.construct_id)
    config = table_id(resources, "Config")
    invoices = table_id(resources, INVOICES_TABLE.construct_id)
    quarantine = logical_id(resources, "AWS::S3::Bucket", "IngestQuarantine")

    def actions_on(logical: str) -> set[str]:
        return {
            action
            for s in statements
            if any(mentions(r, logical) for r in resources_of(s))
            for action in actions_of(s)
        }

    assert actions_on(ledger) == {
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:UpdateItem",  # a late event lowers its account's due hint
    }
    config_actions = actions_on(config)
    assert "dynamodb:GetItem" in config_actions
    assert not {a for a in config_actions if re.search(r"Put|Update|Delete|Write", a)}
    assert actions_on(invoices) == set()
    # Kept under rejected/, staged under staged/; GetObject for HeadObject and a copy's source
    assert actions_on(quarantine) == {"s3:PutObject", "s3:GetObject"}
    puts = [s for s in statements if "s3:PutObject" in actions_of(s)]
    assert [resources_of(put) for put in puts] == [
        [{"Fn::Join": ["", [arn(quarantine), f"/{prefix}*"]]}]
        for prefix in (QUARANTINE_PREFIX, STAGED_PREFIX, QUARANTINE_INDEX_PREFIX)
    ]


def test_the_quarantine_prefix_is_where_rejected_records_are_written() -> None:
    [record] = shard([b"not json"])
    assert quarantine_key(record).startswith(QUARANTINE_PREFIX)
    assert document_key("acct-1", "2026-11", "INV-1", "pdf").startswith(INVOICE_PREFIX)


# --- Invoicing -----------------------------------------------------------------------------


def test_state_machine_deploys_the_asl_file_with_the_task_functions_substituted(
    resources: Resources,
) -> None:
    [machine] = of_type(resources, "AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    # GIVEN the substitutions the stack declares
    substitutions = props["DefinitionSubstitutions"]
    run_bucket = logical_id(resources, "AWS::S3::Bucket", "InvoicingInvoiceRuns")
    assert substitutions == {
        **{
            variable: arn(function_id(resources, function))
            for variable, function in workflows.INVOICE_RUN_FUNCTIONS.items()
        },
        workflows.RUN_BUCKET_VARIABLE: {"Ref": run_bucket},
    }

    # WHEN Step Functions applies them (here: each function's and the bucket's logical id)
    def logical(value: dict[str, Any]) -> str:
        return str(value["Fn::GetAtt"][0] if "Fn::GetAtt" in value else value["Ref"])

    deployed = re.sub(
        r"\$\{(\w+)\}", lambda m: logical(substitutions[m.group(1)]), props["DefinitionString"]
    )
    # THEN the definition is the ASL file's, substituted the way the local runtime does it
    expected = workflows.substituted(
        {name: logical(value) for name, value in substitutions.items()}
    )
    assert json.loads(deployed) == expected
    assert props["DefinitionString"] == workflows.definition_text(workflows.INVOICE_RUN)
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False


def test_issue_and_send_stop_before_their_workflow_task_times_out(resources: Resources) -> None:
    # A task retried on timeout must not overlap the attempt it replaces, still running.
    [machine] = of_type(resources, "AWS::StepFunctions::StateMachine").values()
    states = json.loads(machine["Properties"]["DefinitionString"])["States"]
    iterator = next(s for s in states.values() if s["Type"] == "Map")["ItemProcessor"]["States"]
    for state, function in (("Issue", "issue_invoices"), ("Send", "send_invoices")):
        timeout = resources[function_id(resources, function)]["Properties"]["Timeout"]
        assert timeout == INVOICE_STEP_TIMEOUT_SECONDS == 300
        assert iterator[state]["TimeoutSeconds"] == INVOICE_TASK_TIMEOUT_SECONDS == 330


def test_state_machine_may_invoke_exactly_its_four_task_functions(resources: Resources) -> None:
    role = logical_id(resources, "AWS::IAM::Role", "InvoicingInvoiceRunRole")
    invokes = [
        s for s in role_statements(resources, role) if "lambda:InvokeFunction" in actions_of(s)
    ]
    assert [resource for s in invokes for resource in resources_of(s)] == [
        arn(function_id(resources, name)) for name in workflows.INVOICE_RUN_FUNCTIONS.values()
    ]


def test_schedule_starts_the_invoice_run_hourly_with_its_scheduled_time(
    template: Template, resources: Resources, key_arn: dict[str, Any]
) -> None:
    starter = function_id(resources, "start_invoice_run")
    schedule_role = logical_id(resources, "AWS::IAM::Role", "InvoicingScheduleRole")
    failures = logical_id(resources, "AWS::SQS::Queue", "InvoicingScheduleFailures")
    template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": "cron(0 * * * ? *)",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "KmsKeyArn": key_arn,
            "Target": {
                "Arn": arn(starter),
                "RoleArn": arn(schedule_role),
                "Input": SCHEDULE_INPUT,
                "DeadLetterConfig": {"Arn": arn(failures)},
                "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 5},
            },
        },
    )
    assert json.loads(SCHEDULE_INPUT) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}
    # Scheduler invokes asynchronously: a start that fails Lambda's retries is kept too
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": starter},
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 3600,
            "DestinationConfig": {"OnFailure": {"Destination": arn(failures)}},
        },
    )
    machine = logical_id(resources, "AWS::StepFunctions::StateMachine", "InvoicingInvoiceRun")
    env = resources[starter]["Properties"]["Environment"]["Variables"]
    assert env[STATE_MACHINE_ENV] == {"Ref": machine}
    [start] = [
        s
        for s in role_statements(resources, role_id(resources, "start_invoice_run"))
        if "states:StartExecution" in actions_of(s)
    ]
    assert resources_of(start) == [{"Ref": machine}]


def test_invoice_tasks_reach_documents_only_under_the_invoice_prefix(
    resources: Resources,
) -> None:
    bucket = logical_id(resources, "AWS::S3::Bucket", "InvoicingInvoices")
    documents = {"Fn::Join": ["", [arn(bucket), f"/{INVOICE_PREFIX}*"]]}
    run_bucket = logical_id(resources, "AWS::S3::Bucket", "InvoicingInvoiceRuns")
    run_files = json.dumps({"Fn::Join": ["", [arn(run_bucket), f"/{RUNS_PREFIX}*"]]})
    s3_by_function = {
        name: {
            (action, json.dumps(resource))
            for s in role_statements(resources, role_id(resources, name))
            for action in actions_of(s)
            if action.startswith("s3:")
            for resource in resources_of(s)
        }
        for name in ("list_due", "issue_invoices", "send_invoices", "report_run", "usage_api")
    }
    assert s3_by_function == {
        # the manifest, in one put or in parts, in the run bucket only
        "list_due": {("s3:PutObject", run_files), ("s3:AbortMultipartUpload", run_files)},
        # issue_invoices reads back the documents an earlier attempt stored, to email them
        "issue_invoices": {
            ("s3:PutObject", json.dumps(documents)),
            ("s3:GetObject", json.dumps(documents)),
        },
        # send_invoices reads them to email them, and writes a credit note's beside its
        # invoice's (`billing invoices void`)
        "send_invoices": {
            ("s3:PutObject", json.dumps(documents)),
            ("s3:GetObject", json.dumps(documents)),
        },
        # the batches' results and the report, in the run bucket only
        "report_run": {
            ("s3:GetObject", run_files),
            ("s3:PutObject", run_files),
            ("s3:ListBucket", json.dumps(arn(run_bucket))),
        },
        "usage_api": {("s3:GetObject", json.dumps(documents))},
    }


def test_invoice_documents_can_only_be_created_never_replaced(resources: Resources) -> None:
    puts = [
        s
        for name in FUNCTIONS
        for s in role_statements(resources, role_id(resources, name))
        if "s3:PutObject" in actions_of(s) and mentions(s, "InvoicingInvoices")
    ]
    # The writers of invoice documents (Issue; Send, for a credit note's) must send
    # If-None-Match: a document stored under a number is never overwritten
    # (billing.store.documents.put_new).
    assert [s.get("Condition") for s in puts] == [{"Null": {"s3:if-none-match": "false"}}] * 2


def test_only_the_issue_and_send_tasks_and_spend_alerts_may_email_and_only_as_the_sender(
    template: Template, resources: Resources
) -> None:
    template.has_parameter("SenderEmail", {"Type": "String", "AllowedPattern": Match.any_value()})
    senders = {
        name
        for name in FUNCTIONS
        for s in role_statements(resources, role_id(resources, name))
        if any(a.startswith("ses:") for a in actions_of(s))
    }
    # issue_invoices emails what it issued; send_invoices what is still unsent;
    # spend_alerts a customer's alerts, under the same restrictions
    assert senders == {"issue_invoices", "send_invoices", "spend_alerts"}
    configuration_set = logical_id(resources, "AWS::SES::ConfigurationSet", "InvoicingEmail")
    for name in senders:
        [send] = [
            s
            for s in role_statements(resources, role_id(resources, name))
            if "ses:SendEmail" in actions_of(s)
        ]
        assert sorted(actions_of(send)) == ["ses:SendEmail", "ses:SendRawEmail"]
        assert send["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "SenderEmail"}}}
        identities = [json.dumps(r) for r in resources_of(send)]
        assert len(identities) == 3
        assert all("ses" in r for r in identities)
        assert any(configuration_set in r for r in identities)
        env = resources[function_id(resources, name)]["Properties"]["Environment"]
        assert env["Variables"][SENDER_ENV] == {"Ref": "SenderEmail"}
        assert env["Variables"][SES_CONFIGURATION_SET_ENV] == {"Ref": configuration_set}
    template.has_resource_properties(
        "AWS::SES::EmailIdentity",
        {"EmailIdentity": {"Ref": "SenderEmail"}, "ConfigurationSetAttributes": Match.any_value()},
    )


def test_report_run_holds_no_grant_beyond_its_logs_traces_and_the_run_files(
    resources: Resources,
) -> None:
    actions = {
        action
        for s in role_statements(resources, role_id(resources, "report_run"))
        for action in actions_of(s)
    }
    # (where the s3 actions reach: test_invoice_tasks_reach_documents_only_under_the_...)
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }


def test_every_function_runs_python_3_12_on_arm64_with_the_layer_and_its_own_role(
    resources: Resources,
) -> None:
    [layer] = of_type(resources, "AWS::Lambda::LayerVersion")
    roles = set()
    for name, construct_path in FUNCTIONS.items():
        props = resources[function_id(resources, name)]["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["Handler"] == "app.handler"
        assert props["Layers"] == [{"Ref": layer}]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["LoggingConfig"]["LogGroup"] == {
            "Ref": logical_id(resources, "AWS::Logs::LogGroup", f"{construct_path}Logs")
        }
        roles.add(json.dumps(props["Role"]))
    assert len(roles) == len(FUNCTIONS)


def test_a_wildcard_resource_is_granted_only_for_actions_that_take_no_other(
    resources: Resources,
) -> None:
    # cdk-nag's Resource::* acknowledgment on each role covers exactly these
    for name in FUNCTIONS:
        wildcard = {
            action
            for s in role_statements(resources, role_id(resources, name))
            if "*" in resources_of(s)
            for action in actions_of(s)
        }
        expected = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
        if name == "spend_alerts":
            expected.add("dynamodb:ListStreams")
        if name in ("issue_invoices", "send_invoices"):
            expected.add("ses:GetAccount")  # the account's own sending quota
        assert wildcard == expected, name


def test_every_log_group_has_a_retention(resources: Resources) -> None:
    for name, group in of_type(resources, "AWS::Logs::LogGroup").items():
        assert group["Properties"]["RetentionInDays"] == 30, name


# --- Alarms --------------------------------------------------------------------------------


def alarms(resources: Resources) -> dict[str, dict[str, Any]]:
    return {n: r["Properties"] for n, r in of_type(resources, "AWS::CloudWatch::Alarm").items()}


def test_stream_consumers_alarm_on_iterator_age_in_milliseconds(
    template: Template, resources: Resources
) -> None:
    for consumer in ("rate_usage", "spend_alerts"):
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "Namespace": "AWS/Lambda",
                "MetricName": "IteratorAge",
                "Dimensions": [
                    {"Name": "FunctionName", "Value": {"Ref": function_id(resources, consumer)}}
                ],
                "Statistic": "Maximum",
                "Unit": "Milliseconds",
                "Period": 60,
                "EvaluationPeriods": 5,
                "Threshold": 300_000,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            },
        )


def test_every_function_alarms_on_errors_and_throttles(resources: Resources) -> None:
    for name in FUNCTIONS:
        dimensions = [{"Name": "FunctionName", "Value": {"Ref": function_id(resources, name)}}]
        watched = {
            (a["MetricName"], a["Statistic"], a["Threshold"])
            for a in alarms(resources).values()
            if a.get("Namespace") == "AWS/Lambda" and a.get("Dimensions") == dimensions
        }
        assert {("Errors", "Sum", 1), ("Throttles", "Sum", 1)} <= watched, name


def test_failure_queues_alarm_on_the_first_message(resources: Resources) -> None:
    for prefix in (
        "IngestRatingFailures",
        "InvoicingScheduleFailures",
        "AlertsAlertFailures",
        "InvoicingEmailEventFailures",
        "WebhooksWebhookDeadLetters",
    ):
        queue = logical_id(resources, "AWS::SQS::Queue", prefix)
        [alarm] = [
            a
            for a in alarms(resources).values()
            if a.get("Dimensions")
            == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
        ]
        assert alarm["Namespace"] == "AWS/SQS"
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["Statistic"] == "Maximum"
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_failed_invoice_runs_alarm(template: Template, resources: Resources) -> None:
    machine = logical_id(resources, "AWS::StepFunctions::StateMachine", "InvoicingInvoiceRun")
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/States",
            "MetricName": "ExecutionsFailed",
            "Dimensions": [{"Name": "StateMachineArn", "Value": {"Ref": machine}}],
            "Statistic": "Sum",
            "Threshold": 1,
        },
    )


def test_rejected_share_alarm_reads_the_raters_emf_metrics(resources: Resources) -> None:
    # GIVEN the alarm built from a metric math expression
    [alarm] = [a for a in alarms(resources).values() if "Metrics" in a]
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    # THEN its inputs are the rater's Powertools metrics (namespace, dimension, name, sum)
    for query_id, metric_name in {
        "rejected": "Rejected",
        "eventsrated": "EventsRated",
        "duplicates": "Duplicates",
        "replayed": "Replayed",
    }.items():
        stat = queries[query_id]["MetricStat"]
        assert stat["Metric"] == {
            "Namespace": "UsageBilling",
            "MetricName": metric_name,
            "Dimensions": [{"Name": "service", "Value": "rate_usage"}],
        }
        assert stat["Stat"] == "Sum"
        assert queries[query_id]["ReturnData"] is False
    [expression] = [q for q in alarm["Metrics"] if "Expression" in q]
    assert "100 * rejected /" in expression["Expression"]
    assert alarm["Threshold"] == 5
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_rate_usage_still_publishes_the_metrics_the_alarms_read() -> None:
    source = (FUNCTIONS_SOURCE / "rate_usage" / "app.py").read_text()
    assert 'Metrics(namespace="UsageBilling", service="rate_usage")' in source
    for name in ("EventsRated", "Duplicates", "Replayed", "Rejected"):
        assert f'"{name}"' in source


def test_the_dashboard_graphs_the_raters_unpriced_events(resources: Resources) -> None:
    [dashboard] = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    body = "".join(part for part in parts if isinstance(part, str))
    # the rater's Powertools metric, by its one dimension (no account id: one metric)
    assert '["UsageBilling","UnpricedEvents","service","rate_usage"' in body
    source = (FUNCTIONS_SOURCE / "rate_usage" / "app.py").read_text()
    assert '"UnpricedEvents"' in source


def test_every_alarm_notifies_the_encrypted_topic(resources: Resources) -> None:
    topic = logical_id(resources, "AWS::SNS::Topic", "MonitoringAlarms")
    for name, alarm in alarms(resources).items():
        assert alarm["AlarmActions"] == [{"Ref": topic}], name
        assert alarm["TreatMissingData"] == "notBreaching", name
    assert of_type(resources, "AWS::CloudWatch::Dashboard")


# --- Outputs -------------------------------------------------------------------------------


def test_outputs_are_the_keys_the_command_line_looks_up(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    declared = {getattr(STACK_OUTPUTS, f) for f in STACK_OUTPUTS.__dataclass_fields__}
    assert set(outputs) == declared
    resources = template.to_json()["Resources"]
    assert outputs[STACK_OUTPUTS.usage_stream_name]["Value"] == {
        "Ref": logical_id(resources, "AWS::Kinesis::Stream", "IngestUsageStream")
    }
    assert outputs[STACK_OUTPUTS.invoice_bucket]["Value"] == {
        "Ref": logical_id(resources, "AWS::S3::Bucket", "InvoicingInvoices")
    }


# --- Usage API -----------------------------------------------------------------------------


def usage_api_resources(resources: Resources, kind: str) -> dict[str, dict[str, Any]]:
    """The usage API's resources of this type (the customer API has its own)."""
    [api] = [n for n in of_type(resources, "AWS::ApiGateway::RestApi") if n.startswith("Api")]
    return {
        name: resource
        for name, resource in of_type(resources, kind).items()
        if resource["Properties"]["RestApiId"] == {"Ref": api}
    }


def test_usage_api_routes_need_iam_auth_and_validated_path_parameters(
    template: Template, resources: Resources
) -> None:
    validator = logical_id(resources, "AWS::ApiGateway::RequestValidator", "ApiRequests")
    assert resources[validator]["Properties"]["ValidateRequestParameters"] is True
    usage_api = function_id(resources, "usage_api")
    methods = {
        name: method
        for name, method in usage_api_resources(resources, "AWS::ApiGateway::Method").items()
        if mentions(method["Properties"]["Integration"]["Uri"], usage_api)
    }  # the operator routes: tests/infra/test_operator_routes.py
    routes = {}
    for name, method in methods.items():
        props = method["Properties"]
        assert props["HttpMethod"] == "GET", name
        assert props["AuthorizationType"] == "AWS_IAM", name
        assert props["RequestValidatorId"] == {"Ref": validator}, name
        assert props["Integration"]["Type"] == "AWS_PROXY", name
        assert mentions(props["Integration"]["Uri"], function_id(resources, "usage_api"))
        routes[path_of(resources, props["ResourceId"]["Ref"])] = props["RequestParameters"]
    # every route the function answers (functions/usage_api), and no other
    account = {"method.request.path.account_id": True}
    period = {**account, "method.request.querystring.period": False}
    assert routes == {
        "/accounts/{account_id}/usage": period,
        "/accounts/{account_id}/explanation": period,
        "/accounts/{account_id}/invoices": account,
        "/accounts/{account_id}/invoices/{number}": {
            **account,
            "method.request.path.number": True,
        },
        "/accounts/{account_id}/credit-notes": account,
        "/accounts/{account_id}/adjustments": account,
    }


def test_usage_api_stage_is_throttled_traced_and_access_logged_to_an_encrypted_group(
    template: Template, resources: Resources
) -> None:
    logs = logical_id(resources, "AWS::Logs::LogGroup", "ApiAccessLogs")
    [stage] = usage_api_resources(resources, "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    assert props["AccessLogSetting"]["DestinationArn"] == arn(logs)
    logged = json.loads(props["AccessLogSetting"]["Format"])
    assert {"requestId", "status", "resourcePath", "integrationError"} <= set(logged)
    assert props["MethodSettings"] == [
        {
            "DataTraceEnabled": False,
            "HttpMethod": "*",
            "MetricsEnabled": True,
            "ResourcePath": "/*",
            "ThrottlingBurstLimit": 100,
            "ThrottlingRateLimit": 50,
        }
    ]


def test_usage_api_function_only_reads(resources: Resources, key_arn: dict[str, Any]) -> None:
    statements = role_statements(resources, role_id(resources, "usage_api"))
    actions = {a for s in statements for a in actions_of(s)}
    writes = {a for a in actions if re.search(r"Put|Update|Delete|Write|Encrypt|Generate", a)}
    assert writes == {"logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    for construct_id, read in (("Ledger", "GetItem"), ("Config", "GetItem"), ("Invoices", "Query")):
        table = table_id(resources, construct_id)
        assert any(
            f"dynamodb:{read}" in actions_of(s) and arn(table) in resources_of(s)
            for s in statements
        ), construct_id
    assert any("kms:Decrypt" in actions_of(s) and resources_of(s) == [key_arn] for s in statements)


# --- Spend alerts --------------------------------------------------------------------------


def test_spend_alerts_read_the_ledger_stream_filtered_with_bisect_and_a_destination(
    template: Template, resources: Resources
) -> None:
    ledger = table_id(resources, LEDGER_TABLE.construct_id)
    failures = logical_id(resources, "AWS::SQS::Queue", "AlertsAlertFailures")
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [ledger, "StreamArn"]},
            "FunctionName": {"Ref": function_id(resources, "spend_alerts")},
            "StartingPosition": "TRIM_HORIZON",
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": SPEND_ALERTS_RETRY_ATTEMPTS,
            "MaximumRecordAgeInSeconds": SPEND_ALERTS_MAX_RECORD_AGE.to_seconds(),
            "DestinationConfig": {"OnFailure": {"Destination": arn(failures)}},
            "FilterCriteria": {
                "Filters": [
                    {"Pattern": json.dumps(SPEND_ALERTS_STREAM_FILTER, separators=(",", ":"))}
                ]
            },
        },
    )
    # the images the handler compares are on the stream
    stream = resources[ledger]["Properties"]["StreamSpecification"]
    assert stream == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_spend_alerts_publish_to_the_bus_and_write_only_ledger_items(
    resources: Resources,
) -> None:
    statements = role_statements(resources, role_id(resources, "spend_alerts"))
    bus = logical_id(resources, "AWS::Events::EventBus", "InvoicingDomainEvents")
    [put_events] = [s for s in statements if "events:PutEvents" in actions_of(s)]
    assert resources_of(put_events) == [arn(bus)]
    writers = {
        json.dumps(r)
        for s in statements
        if "dynamodb:PutItem" in actions_of(s)
        for r in resources_of(s)
    }
    assert writers == {json.dumps(arn(table_id(resources, LEDGER_TABLE.construct_id)))}
    env = resources[function_id(resources, "spend_alerts")]["Properties"]["Environment"]
    assert env["Variables"][SPEND_ALERT_THRESHOLDS_ENV] == ""


def test_spend_thresholds_come_from_context_and_a_bad_one_fails_the_synth() -> None:
    thresholds = {"USD": ["100", "1000"], "JPY": ["10000"]}
    resources = synthesized(stage="alerts", spend_alert_thresholds=thresholds).to_json()[
        "Resources"
    ]
    env = resources[function_id(resources, "spend_alerts")]["Properties"]["Environment"]
    assert json.loads(env["Variables"][SPEND_ALERT_THRESHOLDS_ENV]) == thresholds
    with pytest.raises(ThresholdsError, match="JPY"):
        synthesized(stage="alerts", spend_alert_thresholds='{"JPY": ["0.5"]}')


def test_seller_comes_from_context_to_the_invoice_functions_and_a_bad_one_fails_the_synth() -> None:
    # GIVEN the seller in context, as cdk.json would hold it
    seller = {
        "legal_name": "Example Cloud Ltd",
        "address": ["1 Main Street", "London EC1A 1AA"],
        "tax_id": "GB123456789",
        "payment_instructions": ["IBAN GB33 BUKB 2020 1555 5555 55"],
        "payment_terms_days": 14,
    }
    # WHEN the stack is synthesized
    resources = synthesized(stage="seller", seller=seller).to_json()["Resources"]
    # THEN the functions that render and email invoices have it, and the defaults go unset
    for folder in ("issue_invoices", "send_invoices"):
        env = resources[function_id(resources, folder)]["Properties"]["Environment"]
        assert json.loads(env["Variables"][SELLER_ENV]) == seller
    # and a setting the invoice cannot print stops the synth, naming the field
    with pytest.raises(SellerSettingsError, match="legal_name"):
        synthesized(stage="seller", seller={"legal_name": "Example\nCloud"})


def test_a_configured_ses_send_rate_reaches_the_emailing_functions_and_only_when_set(
    resources: Resources,
) -> None:
    # GIVEN the default stack: the functions read the account's rate from SES
    for folder in ("issue_invoices", "send_invoices"):
        env = resources[function_id(resources, folder)]["Properties"]["Environment"]
        assert SES_MAX_SEND_RATE_ENV not in env["Variables"]
    # WHEN a rate is configured THEN Issue and Send pace by it
    configured = synthesized(stage="rate", ses_max_send_rate="14").to_json()["Resources"]
    for folder in ("issue_invoices", "send_invoices"):
        env = configured[function_id(configured, folder)]["Properties"]["Environment"]
        assert env["Variables"][SES_MAX_SEND_RATE_ENV] == "14"
    # and a rate that cannot pace stops the synth
    with pytest.raises(ValueError, match="ses_max_send_rate"):
        synthesized(stage="rate", ses_max_send_rate="0")


def test_the_emailing_functions_may_read_the_accounts_send_quota_and_nothing_else_of_it(
    resources: Resources,
) -> None:
    for folder in ("issue_invoices", "send_invoices"):
        statements = role_statements(resources, role_id(resources, folder))
        (quota,) = [s for s in statements if "ses:GetAccount" in actions_of(s)]
        assert (actions_of(quota), resources_of(quota)) == (["ses:GetAccount"], ["*"])


# --- Email feedback (issue 11) --------------------------------------------------------------


def test_ses_publishes_bounces_and_complaints_of_the_configuration_set_to_email_events(
    template: Template, resources: Resources
) -> None:
    configuration_set = logical_id(resources, "AWS::SES::ConfigurationSet", "InvoicingEmail")
    template.has_resource_properties(
        "AWS::SES::ConfigurationSetEventDestination",
        {
            "ConfigurationSetName": {"Ref": configuration_set},
            "EventDestination": {
                "Enabled": True,
                "MatchingEventTypes": ["delivery", "bounce", "complaint"],
                "EventBridgeDestination": {"EventBusArn": Match.any_value()},
            },
        },
    )
    function = function_id(resources, "email_events")
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.ses"],
                "detail-type": ["Email Delivered", "Email Bounced", "Email Complaint Received"],
                "detail": {
                    "mail": {"tags": {"ses:configuration-set": [{"Ref": configuration_set}]}}
                },
            },
            "Targets": [Match.object_like({"Arn": arn(function)})],
        },
    )
    failures = logical_id(resources, "AWS::SQS::Queue", "InvoicingEmailEventFailures")
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": function},
            "DestinationConfig": {"OnFailure": {"Destination": arn(failures)}},
        },
    )


def test_email_events_only_updates_invoice_records_and_publishes(resources: Resources) -> None:
    actions = {
        action
        for s in role_statements(resources, role_id(resources, "email_events"))
        for action in actions_of(s)
    }
    assert not {a for a in actions if a.startswith(("s3:", "ses:", "states:"))}
    assert {"dynamodb:UpdateItem", "dynamodb:GetItem", "events:PutEvents"} <= actions
    assert not {a for a in actions if a.startswith("dynamodb:") and "Delete" in a}


def test_our_sending_account_failing_alarms(resources: Resources) -> None:
    [alarm] = [a for a in alarms(resources).values() if a.get("MetricName") == "InvoiceEmailsHeld"]
    assert alarm["Namespace"] == "UsageBilling"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "invoice_run"}]
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_prod_never_deletes_nor_expires_the_raw_archive() -> None:
    # The archive is what a re-rate and an explanation read (billing.corrections).
    prod = synthesized(stage="prod").to_json()["Resources"]
    archive = logical_id(prod, "AWS::S3::Bucket", "IngestArchive")
    [rule] = prod[archive]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert "ExpirationInDays" not in rule
    assert "NoncurrentVersionExpiration" not in rule
    # Glacier Instant Retrieval: any month reads back with GetObject, without a restore.
    assert rule["Transitions"][-1]["StorageClass"] == "GLACIER_IR"
    [policy] = [
        p
        for p in of_type(prod, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": archive}
    ]
    [never] = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "RawUsageIsNeverDeleted"
    ]
    assert never["Effect"] == "Deny"
    assert never["Principal"] == {"AWS": "*"}
    assert never["Action"] == ["s3:DeleteObject", "s3:DeleteObjectVersion"]
