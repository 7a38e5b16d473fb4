"""Review of issue 12: probes against the synthesized template and the build files.
Each test states a promise of docs/infrastructure.md; a failing test is a break."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import of_type, synthesized

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
Resources = dict[str, Any]


def _text(value: Any) -> str:
    return json.dumps(value)


def test_no_caller_reaches_the_usage_function_around_the_api_resource_policy(
    resources: Resources,
) -> None:
    # API Gateway's TestInvokeMethod (console "Test", `apigateway:POST` on the method) calls
    # the integration as the "test-invoke-stage": no SigV4 check of the caller, no resource
    # policy, no stage access log. CDK's LambdaIntegration lets it by default.
    test_invoke = [
        name
        for name, permission in of_type(resources, "AWS::Lambda::Permission").items()
        if "test-invoke-stage" in _text(permission["Properties"].get("SourceArn"))
    ]
    assert test_invoke == []


def _invoice_bucket_policy(resources: Resources) -> list[dict[str, Any]]:
    [bucket] = [
        n for n in of_type(resources, "AWS::S3::Bucket") if n.startswith("InvoicingInvoices")
    ]
    [policy] = [
        p
        for p in of_type(resources, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_nobody_may_hide_an_issued_document_behind_a_delete_marker(resources: Resources) -> None:
    # Object Lock protects versions, not the key: DeleteObject without a version id is
    # allowed on locked objects and puts a delete marker on top. With a delete marker as
    # the current version, a PutObject with If-None-Match: * succeeds (the key "does not
    # exist"), so delete + put_new replaces what GET (DocumentStore.get, the API, the email
    # step) serves for an issued invoice. The bucket policy denies only puts without
    # If-None-Match; any principal holding s3:DeleteObject + s3:PutObject (an operator, an
    # admin role) can swap an invoice.
    denied: set[str] = set()
    for statement in _invoice_bucket_policy(resources):
        if statement["Effect"] == "Deny" and "Condition" not in statement:
            actions = statement["Action"]
            denied |= {actions} if isinstance(actions, str) else set(actions)
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion"} <= denied


@pytest.mark.parametrize(
    "principal",
    [
        # A session ARN: aws:PrincipalArn is then the role's ARN, never the session's, so
        # the Deny's ArnNotLike on aws:PrincipalArn holds and the configured operator is
        # locked out while the Allow names them.
        "arn:aws:sts::111122223333:assumed-role/BillingOperator/alice",
        # An account: Allow admits the account's principals, Deny (aws:PrincipalArn not
        # like ...:root) refuses every one of them but the root user.
        "arn:aws:iam::111122223333:root",
    ],
)
def test_a_usage_api_principal_the_deny_cannot_match_fails_the_synth(principal: str) -> None:
    with pytest.raises(ValueError, match="usage_api_principals"):
        synthesized(usage_api_principals=[principal])


def test_the_makefile_installs_nothing_from_the_index_without_a_hash() -> None:
    # docs/infrastructure.md: "The package and its build backend ... are the only things not
    # hash-checked". `pip install --upgrade pip` fetches whatever pip the index serves that
    # day, unpinned and unhashed, and that pip then does all the hash checking.
    unchecked = [
        line.strip()
        for line in (ROOT / "Makefile").read_text().splitlines()
        if re.search(r"pip install", line)
        and "--require-hashes" not in line
        and not re.search(r"--no-deps -e \.\s*$", line)
    ]
    assert unchecked == []


def test_the_document_says_where_the_fonts_come_from() -> None:
    # The fonts are vendored with SHA256SUMS (billing/fonts/SOURCES.md); the document still
    # says they come from the font packages and that vendoring is "not done here".
    assert "fontpkg-noto-sans" not in (ROOT / "docs" / "infrastructure.md").read_text()


def test_the_workflow_role_may_use_the_state_key_for_its_own_state_machine(
    resources: Resources,
) -> None:
    # CDK's CustomerManagedEncryptionConfiguration conditions the execution role's key use
    # on kms:EncryptionContext:aws:states:stateMachineArn = formatArn(resourceName=
    # physicalName); with no stateMachineName set that is "arn:...:stateMachine:" -- an
    # ARN with no name, which no state machine has. The statement can never apply.
    [role] = [
        n for n in of_type(resources, "AWS::IAM::Role") if n.startswith("InvoicingInvoiceRunRole")
    ]
    contexts = []
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for operator in statement.get("Condition", {}).values():
                value = operator.get("kms:EncryptionContext:aws:states:stateMachineArn")
                if value is not None:
                    contexts.append(value)
    assert contexts, "the role names its state machine's encryption context"
    for value in contexts:
        parts = value.get("Fn::Join", ["", []])[1] if isinstance(value, dict) else [value]
        assert not (isinstance(parts[-1], str) and parts[-1].endswith(":stateMachine:")), value


def test_no_key_policy_lets_a_principal_grant_itself_use_outside_the_services(
    resources: Resources,
) -> None:
    # The use statement allows kms:CreateGrant only through the data's services
    # (kms:ViaService), but the administration statement allows "kms:Create*" -- which is
    # kms:CreateGrant too -- with no condition. A principal whose IAM policy allows
    # kms:CreateGrant (not kms:Decrypt) can then grant itself Decrypt on the invoice key and
    # decrypt directly, outside S3 and DynamoDB.
    from fnmatch import fnmatchcase

    loose = []
    for name, key in of_type(resources, "AWS::KMS::Key").items():
        for statement in key["Properties"]["KeyPolicy"]["Statement"]:
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            if statement["Effect"] == "Allow" and any(
                fnmatchcase("kms:CreateGrant", a) for a in actions
            ):
                conditions = json.dumps(statement.get("Condition", {}))
                if (
                    "kms:ViaService" not in conditions
                    and "kms:GrantIsForAWSResource" not in conditions
                ):
                    loose.append((name, statement.get("Sid")))
    assert loose == []
