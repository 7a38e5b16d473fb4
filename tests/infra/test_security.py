"""Security properties of the synthesized stack (issue 12): who may call the usage API and
what its log records, nothing billing-related in traces, source conditions on every trust
and resource policy, write-once invoices, keys separated by data class, least privilege."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import of_type, synthesized

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


# --- The usage API ------------------------------------------------------------------------


def api_policy(resources: Resources) -> list[dict[str, Any]]:
    [api] = of_type(resources, "AWS::ApiGateway::RestApi").values()
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
    with pytest.raises(Exception, match="not an IAM principal ARN"):
        synthesized(usage_api_principals="*")


def test_usage_api_access_log_records_the_caller_and_the_account_requested(
    resources: Resources,
) -> None:
    [stage] = of_type(resources, "AWS::ApiGateway::Stage").values()
    logged = json.loads(stage["Properties"]["AccessLogSetting"]["Format"])
    # $context.path is the path as requested (/accounts/acct-1/usage), not the template.
    assert logged["path"] == "$context.path"
    assert logged["callerArn"] == "$context.identity.userArn"
    assert logged["callerAccount"] == "$context.identity.accountId"
    assert logged["callerOrg"] == "$context.identity.principalOrgId"
