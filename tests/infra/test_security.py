"""Security properties of the synthesized stack (issue 12): who may call the usage API and
what its log records, nothing billing-related in traces, source conditions on every trust
and resource policy, write-once invoices, keys separated by data class, least privilege."""

from __future__ import annotations

import importlib
import inspect
import json
import re
from typing import Any

import pytest
from aws_lambda_powertools.shared import constants

from stacks.common import TRACER_ENVIRONMENT
from stacks.permissions import DESTINATION, EVENT_SOURCE, FUNCTION_ACTIONS, Call
from stacks.settings import ROOT
from tests.infra.conftest import logical_id, of_type, synthesized

Resources = dict[str, Any]
INVOKE = "execute-api:Invoke"


def statements_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- Traces -------------------------------------------------------------------------------


def test_no_function_lets_the_tracer_record_its_responses_or_errors(
    resources: Resources,
) -> None:
    functions = of_type(resources, "AWS::Lambda::Function")
    assert len(functions) >= 8
    for name, function in functions.items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false", name
        assert variables["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false", name


def test_the_variables_set_are_the_ones_the_shipped_powertools_reads() -> None:
    # the layer's Powertools reads these names, with "true" as its default
    assert set(TRACER_ENVIRONMENT) == {
        constants.TRACER_CAPTURE_RESPONSE_ENV,
        constants.TRACER_CAPTURE_ERROR_ENV,
    }
    assert set(TRACER_ENVIRONMENT.values()) == {"false"}


# --- The usage API ------------------------------------------------------------------------


def api_policy(resources: Resources) -> list[dict[str, Any]]:
    # the usage API (the customer API, with its own authorizer, has no resource policy)
    [api] = [r for n, r in of_type(resources, "AWS::ApiGateway::RestApi").items() if n[:3] == "Api"]
    return statements_of(api["Properties"]["Policy"])


def test_usage_api_by_default_lets_only_this_account_in_and_denies_everyone_else(
    resources: Resources,
) -> None:
    statements = api_policy(resources)
    allows = [s for s in statements if s["Effect"] == "Allow"]
    denies = [s for s in statements if s["Effect"] == "Deny"]
    assert [s["Principal"] for s in allows] == [
        {
            "AWS": {
                "Fn::Join": [
                    "",
                    [
                        "arn:",
                        {"Ref": "AWS::Partition"},
                        ":iam::",
                        {"Ref": "AWS::AccountId"},
                        ":root",
                    ],
                ]
            }
        }
    ]
    [deny] = denies
    assert deny["Principal"] == {"AWS": "*"}
    assert deny["Action"] == INVOKE
    assert deny["Condition"] == {
        "StringNotEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}
    }


def test_usage_api_configured_principals_and_organization_are_the_only_callers() -> None:
    operators = "arn:aws:iam::111122223333:role/billing-operators"
    portal = "arn:aws:iam::111122223333:role/billing-portal"
    template = synthesized(
        usage_api_principals=[operators, portal], usage_api_organization="o-abc123"
    )
    resources = template.to_json()["Resources"]
    statements = api_policy(resources)
    allowed = [s.get("Principal") for s in statements if s["Effect"] == "Allow"]
    assert {"AWS": [operators, portal]} in allowed or {"AWS": [portal, operators]} in allowed
    org = [s for s in statements if s.get("Condition", {}).get("StringEquals")]
    assert org[0]["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {
        "ArnNotLike": {"aws:PrincipalArn": [operators, portal]},
        "StringNotEquals": {"aws:PrincipalOrgID": "o-abc123"},
    }


def test_a_usage_api_principal_that_is_not_an_iam_arn_fails_the_synth() -> None:
    with pytest.raises(Exception, match="not the ARN of an IAM role or user"):
        synthesized(usage_api_principals="*")


def test_usage_api_access_log_records_the_caller_and_the_account_requested(
    resources: Resources,
) -> None:
    [stage] = [r for n, r in of_type(resources, "AWS::ApiGateway::Stage").items() if n[:3] == "Api"]
    logged = json.loads(stage["Properties"]["AccessLogSetting"]["Format"])
    # $context.path is the path as requested (/accounts/acct-1/usage), not the template.
    assert logged["path"] == "$context.path"
    assert logged["callerArn"] == "$context.identity.userArn"
    assert logged["callerAccount"] == "$context.identity.accountId"
    assert logged["callerOrg"] == "$context.identity.principalOrgId"


# --- The raw archive ----------------------------------------------------------------------

# What Firehose's documentation lists for a Kinesis source, a Lambda processor and an S3
# destination (with its KMS key and error logging), and nothing else.
FIREHOSE_ACTIONS = {
    "kinesis:DescribeStream",
    "kinesis:GetShardIterator",
    "kinesis:GetRecords",
    "kinesis:ListShards",
    "lambda:InvokeFunction",
    "lambda:GetFunctionConfiguration",
    "s3:AbortMultipartUpload",
    "s3:GetBucketLocation",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:PutObject",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "logs:PutLogEvents",
}


def attached_statements(resources: Resources, role: str) -> list[dict[str, Any]]:
    found = []
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"].get("Roles", []):
            found.extend(statements_of(policy["Properties"]["PolicyDocument"]))
    return found


# ... and for record format conversion (the warehouse's raw_usage), the Glue table's schema.
GLUE_SCHEMA_ACTIONS = {"glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"}


@pytest.mark.parametrize(
    ("delivery_stream", "documented"),
    [
        ("IngestRawArchive", FIREHOSE_ACTIONS),
        ("WarehouseRawUsageDelivery", FIREHOSE_ACTIONS | GLUE_SCHEMA_ACTIONS),
        # direct PUT: no stream to read, no function to invoke, no stream key
        *(
            (
                f"WarehouseFeed{name}Delivery",
                {a for a in FIREHOSE_ACTIONS if a.split(":")[0] in ("s3", "kms", "logs")}
                | GLUE_SCHEMA_ACTIONS,
            )
            for name in ("Invoices", "InvoiceLines", "DailyUsage", "RejectedRecords")
        ),
    ],
)
def test_firehose_uses_one_role_that_holds_only_the_documented_actions(
    resources: Resources, delivery_stream: str, documented: set[str]
) -> None:
    name = logical_id(resources, "AWS::KinesisFirehose::DeliveryStream", delivery_stream)
    props = resources[name]["Properties"]
    destination = props["ExtendedS3DestinationConfiguration"]
    role = destination["RoleARN"]["Fn::GetAtt"][0]
    if "KinesisStreamSourceConfiguration" in props:
        assert props["KinesisStreamSourceConfiguration"]["RoleARN"]["Fn::GetAtt"][0] == role
    conversion = destination.get("DataFormatConversionConfiguration", {})
    if conversion:
        assert conversion["SchemaConfiguration"]["RoleARN"]["Fn::GetAtt"][0] == role
    statements = attached_statements(resources, role)
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert actions == documented
    # every key use is through the service that needs it
    for statement in statements:
        if any(a.startswith("kms:") for a in as_list(statement["Action"])):
            assert "kms:ViaService" in statement["Condition"]["StringEquals"], statement


def test_every_service_role_trusts_its_service_for_this_account_only(
    resources: Resources,
) -> None:
    roles = of_type(resources, "AWS::IAM::Role")
    assert roles
    for name, role in roles.items():
        for statement in statements_of(role["Properties"]["AssumeRolePolicyDocument"]):
            service = statement["Principal"]["Service"]
            if service == "lambda.amazonaws.com":
                continue  # Lambda assumes a function's role only for that function
            condition = statement.get("Condition", {}).get("StringEquals", {})
            assert condition.get("aws:SourceAccount") == {"Ref": "AWS::AccountId"}, name


def test_scheduler_assumes_its_role_only_for_the_invoice_run_schedule_group(
    resources: Resources,
) -> None:
    [(group, declared)] = of_type(resources, "AWS::Scheduler::ScheduleGroup").items()
    [schedule] = of_type(resources, "AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["GroupName"] == declared["Properties"]["Name"]
    role = schedule["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
    [trust] = statements_of(resources[role]["Properties"]["AssumeRolePolicyDocument"])
    assert trust["Condition"]["StringEquals"]["aws:SourceArn"] == {"Fn::GetAtt": [group, "Arn"]}


# --- Invoices are write-once --------------------------------------------------------------


def invoice_bucket(resources: Resources) -> tuple[str, dict[str, Any]]:
    [(name, bucket)] = [
        (n, r)
        for n, r in of_type(resources, "AWS::S3::Bucket").items()
        if n.startswith("InvoicingInvoices")
    ]
    return name, bucket["Properties"]


@pytest.mark.parametrize(
    ("context", "mode", "days"),
    [
        ({}, "GOVERNANCE", 1),
        ({"stage": "prod"}, "COMPLIANCE", 3653),
        ({"stage": "prod", "invoice_retention_days": "2557"}, "COMPLIANCE", 2557),
    ],
)
def test_invoice_documents_are_locked_for_the_retention_accounting_requires(
    context: dict[str, str], mode: str, days: int
) -> None:
    resources = synthesized(**context).to_json()["Resources"]
    _, props = invoice_bucket(resources)
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}},
    }
    # no rule expires an old version before its lock would let it go
    for rule in props["LifecycleConfiguration"]["Rules"]:
        assert "NoncurrentVersionExpiration" not in rule
        assert "ExpirationInDays" not in rule


def test_no_put_may_replace_an_invoice_document(resources: Resources) -> None:
    name, _ = invoice_bucket(resources)
    [policy] = [
        p
        for p in of_type(resources, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": name}
    ]
    statements = statements_of(policy["Properties"]["PolicyDocument"])
    assert {
        "Sid": "DocumentsAreWrittenOnce",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:PutObject",
        "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [name, "Arn"]}, "/*"]]},
        "Condition": {"Null": {"s3:if-none-match": "true"}},
    } in statements


def test_no_function_may_delete_or_unlock_an_invoice_document(resources: Resources) -> None:
    name, _ = invoice_bucket(resources)
    forbidden = re.compile(
        r"s3:(\*|Delete.*|PutObjectRetention|PutObjectLegalHold|BypassGovernanceRetention"
        r"|PutBucketObjectLockConfiguration|PutLifecycleConfiguration|PutBucketPolicy)"
    )
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        for statement in statements_of(policy["Properties"]["PolicyDocument"]):
            if name not in json.dumps(statement.get("Resource")):
                continue
            for action in as_list(statement["Action"]):
                assert not forbidden.fullmatch(action), (policy["Properties"]["Roles"], action)


# --- Least privilege: every function holds exactly the calls its code makes ----------------

FUNCTION_ROLES = {
    "rate_usage": "IngestRateUsage",
    "archive_records": "IngestArchiveRecords",
    "warehouse_records": "WarehouseWarehouseRecords",
    "warehouse_rows": "WarehouseFeedWarehouseRows",
    "list_due": "InvoicingListDue",
    "issue_invoices": "InvoicingIssueInvoices",
    "send_invoices": "InvoicingSendInvoices",
    "report_run": "InvoicingReportRun",
    "email_events": "InvoicingEmailEvents",
    "start_invoice_run": "InvoicingStartInvoiceRun",
    "usage_api": "ApiUsageApi",
    "operator_api": "ApiOperatorApi",
    "customer_api": "CustomerApiCustomerRoutes",
    "customer_authorizer": "CustomerApiCustomerAuthorizer",
    "spend_alerts": "AlertsSpendAlerts",
    "deliver_webhooks": "WebhooksDeliverWebhooks",
}
CRYPTO = re.compile(r"kms:(Decrypt|Encrypt|GenerateDataKey.*|ReEncrypt.*|\*)")


def function_role(resources: Resources, name: str) -> str:
    prefix = f"{FUNCTION_ROLES[name]}Role"
    [role] = [n for n in of_type(resources, "AWS::IAM::Role") if n.startswith(prefix)]
    return role


def test_the_table_names_every_function_of_the_stack(resources: Resources) -> None:
    assert set(FUNCTION_ROLES) == set(FUNCTION_ACTIONS)
    functions = of_type(resources, "AWS::Lambda::Function")
    roles = {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions.values()}
    assert roles == {function_role(resources, name) for name in FUNCTION_ROLES}


@pytest.mark.parametrize("name", sorted(FUNCTION_ACTIONS))
def test_a_function_role_holds_exactly_the_actions_of_its_row_in_the_table(
    resources: Resources, name: str
) -> None:
    statements = attached_statements(resources, function_role(resources, name))
    granted = {a for s in statements for a in as_list(s["Action"]) if not CRYPTO.fullmatch(a)}
    expected = {call.action for made in FUNCTION_ACTIONS[name].values() for call in made} | {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    assert granted == expected


def test_every_key_use_by_a_role_goes_through_a_service_for_one_resource(
    resources: Resources,
) -> None:
    for name, policy in of_type(resources, "AWS::IAM::Policy").items():
        for statement in statements_of(policy["Properties"]["PolicyDocument"]):
            crypto = [a for a in as_list(statement["Action"]) if CRYPTO.fullmatch(a)]
            if not crypto:
                continue
            assert "kms:ReEncrypt*" not in crypto, name
            assert "kms:*" not in crypto, name
            conditions = json.dumps(statement.get("Condition", {}))
            assert "kms:ViaService" in conditions or "kms:EncryptionContext" in conditions, (
                name,
                statement,
            )
            if name.split("Permissions")[0] in FUNCTION_ROLES.values():
                assert "kms:ViaService" in conditions
                assert "kms:EncryptionContext" in conditions


def test_key_policies_separate_administration_from_use(resources: Resources) -> None:
    keys = of_type(resources, "AWS::KMS::Key")
    assert {n.split("Key")[0] for n in keys} == {
        "SecurityInvoice",
        "SecurityUsage",
        "SecurityState",
        "SecurityWarehouse",
    }
    for name, key in keys.items():
        for statement in statements_of(key["Properties"]["KeyPolicy"]):
            actions = as_list(statement["Action"])
            assert "kms:*" not in actions, name
            crypto = [a for a in actions if CRYPTO.fullmatch(a) or a == "kms:Decrypt*"]
            if statement.get("Sid") == "AdministeredByThisAccountsIam":
                assert not crypto, name
            elif crypto:
                # use only through a service, or by a service principal under a condition
                principal = statement["Principal"]
                condition = statement.get("Condition")
                if "AWS" in principal:
                    assert "kms:ViaService" in condition["StringEquals"], (name, statement)
                elif principal != {"Service": "delivery.logs.amazonaws.com"}:
                    # (CDK's statement for the workflow's log delivery, decrypt only)
                    assert condition, (name, statement)


def code_calls() -> list[tuple[str, str, Call]]:
    return [
        (function, store, call)
        for function, stores in FUNCTION_ACTIONS.items()
        for store, made in stores.items()
        for call in made
        if call.by not in (EVENT_SOURCE, DESTINATION)
    ]


@pytest.mark.parametrize(("function", "store", "call"), code_calls())
def test_every_action_in_the_table_is_called_where_the_table_says(
    function: str, store: str, call: Call
) -> None:
    # GIVEN the place the table names: a module's function or method and the SDK method
    target, method = call.by.split(" ")
    module_name, qualified = target.split(":")
    found: Any = importlib.import_module(module_name)
    for part in qualified.split("."):
        found = getattr(found, part)
    # THEN its code calls that SDK method, and the method is the action's operation
    assert f".{method}(" in inspect.getsource(found), call
    operation = "".join(word.title() for word in method.split("_"))
    service = call.action.split(":")[1]
    transact = method == "transact_write_items" and service in ("PutItem", "UpdateItem")
    ses_raw = method == "send_email" and service == "SendRawEmail"  # SES v2, raw content
    # S3 authorizes HeadObject as GetObject, and CopyObject as GetObject of its source and
    # PutObject of its target
    s3_reads = (method, service) in {
        ("head_object", "GetObject"),
        # a presigned GET is signed with the role's credentials and authorized as its
        # GetObject when it is followed
        ("generate_presigned_url", "GetObject"),
        ("copy_object", "GetObject"),
        ("copy_object", "PutObject"),
    }
    # ... a multipart upload's every step as PutObject, and ListObjectsV2 as ListBucket
    s3_authorized_as = (method, service) in {
        ("create_multipart_upload", "PutObject"),
        ("upload_part", "PutObject"),
        ("complete_multipart_upload", "PutObject"),
        ("list_objects_v2", "ListBucket"),
    }
    # SQS authorizes SendMessageBatch as SendMessage
    sqs_batch = (method, service) == ("send_message_batch", "SendMessage")
    assert (
        operation == service or transact or ses_raw or s3_reads or s3_authorized_as or sqs_batch
    ), call


def test_infrastructure_doc_restates_the_table() -> None:
    text = (ROOT / "docs" / "infrastructure.md").read_text()
    rows = set()
    for line in text.splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in FUNCTION_ACTIONS:
            rows.add((cells[0], cells[1], tuple(a.strip("` ") for a in cells[2].split(","))))
    expected = {
        (function, store, tuple(sorted({call.action for call in made})))
        for function, stores in FUNCTION_ACTIONS.items()
        for store, made in stores.items()
    } | {(function, "(none)", ("",)) for function, stores in FUNCTION_ACTIONS.items() if not stores}
    assert rows == expected
