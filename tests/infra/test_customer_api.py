"""The customer API as synthesized: no data route without a key (the authorizer on every
method), the authorizer's cache time, per-key throttling, the key table's encryption and
recovery, and the authorizer's least privilege (stacks/customer_api.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from billing.customer.gateway_answers import GATEWAY_ANSWERS, PORTAL_HEADERS, PORTAL_PAGE
from billing.settings import (
    ACCOUNT_KEYS_INDEX,
    AUTHORIZER_CACHE_ENV,
    STACK_OUTPUTS,
)
from stacks.settings import CUSTOMER_API_THROTTLE, CUSTOMER_KEY_THROTTLE
from tests.infra.conftest import (
    actions_of,
    logical_id,
    of_type,
    path_of,
    resources_of,
    synthesized,
)
from tests.infra.test_stack import FUNCTIONS, arn, function_id, role_id

Resources = dict[str, Any]


def customer_api(resources: Resources) -> str:
    return logical_id(resources, "AWS::ApiGateway::RestApi", "CustomerApi")


def of_customer_api(resources: Resources, kind: str) -> dict[str, dict[str, Any]]:
    api = {"Ref": customer_api(resources)}
    return {
        name: resource
        for name, resource in of_type(resources, kind).items()
        if resource["Properties"].get("RestApiId") == api
    }


def keys_table(resources: Resources) -> str:
    return logical_id(resources, "AWS::DynamoDB::Table", "CustomerApiCustomerKeys")


def authorizer(resources: Resources) -> dict[str, Any]:
    [found] = of_customer_api(resources, "AWS::ApiGateway::Authorizer").values()
    props: dict[str, Any] = found["Properties"]
    return props


# --- no data route without a key -----------------------------------------------------------


def test_every_method_of_the_customer_api_but_the_portal_page_needs_the_authorizer_and_a_key(
    resources: Resources,
) -> None:
    # GIVEN every method of the customer API, by path
    [authorizer_id] = of_customer_api(resources, "AWS::ApiGateway::Authorizer")
    methods = {
        (path_of(resources, m["Properties"]["ResourceId"]["Ref"]), m["Properties"]["HttpMethod"]): m
        for m in of_customer_api(resources, "AWS::ApiGateway::Method").values()
    }

    # THEN there are exactly the data routes (every method) and the portal page
    assert set(methods) == {("/v1/{proxy+}", "ANY"), ("/portal", "GET")}
    data = methods[("/v1/{proxy+}", "ANY")]["Properties"]
    assert data["AuthorizationType"] == "CUSTOM"
    assert data["AuthorizerId"] == {"Ref": authorizer_id}
    assert data["ApiKeyRequired"] is True
    assert data["Integration"]["Type"] == "AWS_PROXY"
    assert function_id(resources, "customer_api") in json.dumps(data["Integration"]["Uri"])
    # AND the one method without it is answered by API Gateway itself: static, no function
    portal = methods[("/portal", "GET")]["Properties"]
    assert portal["AuthorizationType"] == "NONE"
    assert portal["Integration"]["Type"] == "MOCK"
    [answer] = portal["Integration"]["IntegrationResponses"]
    assert set(answer["ResponseTemplates"].values()) == {PORTAL_PAGE}
    assert answer["ResponseParameters"] == {
        f"method.response.header.{name}": f"'{value}'" for name, value in PORTAL_HEADERS
    }


def test_the_customer_api_function_is_invoked_only_through_the_data_routes(
    resources: Resources,
) -> None:
    function = function_id(resources, "customer_api")
    permissions = [
        p["Properties"]
        for p in of_type(resources, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == arn(function)
    ]
    assert permissions
    for permission in permissions:
        assert permission["Principal"] == "apigateway.amazonaws.com"
        source = json.dumps(permission["SourceArn"])
        assert customer_api(resources) in source
        assert "/v1/*" in source


def test_the_authorizer_reads_the_authorization_header_and_keeps_its_answer_a_minute(
    resources: Resources,
) -> None:
    props = authorizer(resources)
    assert props["Type"] == "REQUEST"
    assert props["IdentitySource"] == "method.request.header.Authorization"
    assert props["AuthorizerResultTtlInSeconds"] == 60
    assert function_id(resources, "customer_authorizer") in json.dumps(props["AuthorizerUri"])
    # the function knows the cache time (it refuses a link that would expire within it)
    env = resources[function_id(resources, "customer_authorizer")]["Properties"]["Environment"]
    assert env["Variables"][AUTHORIZER_CACHE_ENV] == "60"


def test_the_cache_time_comes_from_context_and_more_than_a_minute_fails_the_synth() -> None:
    resources = synthesized(stage="cache", customer_authorizer_cache_seconds=15).to_json()[
        "Resources"
    ]
    assert authorizer(resources)["AuthorizerResultTtlInSeconds"] == 15
    env = resources[function_id(resources, "customer_authorizer")]["Properties"]["Environment"]
    assert env["Variables"][AUTHORIZER_CACHE_ENV] == "15"
    with pytest.raises(ValueError, match="customer_authorizer_cache_seconds must be 0 to 60"):
        synthesized(stage="cache", customer_authorizer_cache_seconds=61)


def test_api_gateways_own_refusals_answer_as_the_function_does(resources: Resources) -> None:
    answers = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in of_customer_api(resources, "AWS::ApiGateway::GatewayResponse").values()
    }
    assert set(answers) == set(GATEWAY_ANSWERS)
    for name, answer in GATEWAY_ANSWERS.items():
        assert answers[name]["StatusCode"] == str(answer.status)
        body = json.loads(answers[name]["ResponseTemplates"]["application/json"])
        assert body == {"statusCode": answer.status, "message": answer.message}
    assert answers["UNAUTHORIZED"]["ResponseParameters"] == {
        "gatewayresponse.header.WWW-Authenticate": "'Bearer'"
    }


def test_mapping_templates_hold_no_velocity_markup() -> None:
    # `$` and `#` start Velocity references and directives in API Gateway's templates
    for text in [PORTAL_PAGE, *(a.body() for a in GATEWAY_ANSWERS.values())]:
        assert "$" not in text
        assert "#" not in text


# --- throttling per key ----------------------------------------------------------------------


def test_each_key_is_throttled_by_the_usage_plan_under_the_api_key_its_authorizer_names(
    resources: Resources,
) -> None:
    api = customer_api(resources)
    assert resources[api]["Properties"]["ApiKeySourceType"] == "AUTHORIZER"
    [stage_id] = of_customer_api(resources, "AWS::ApiGateway::Stage")
    [plan] = of_type(resources, "AWS::ApiGateway::UsagePlan").values()
    rate, burst = CUSTOMER_KEY_THROTTLE
    assert plan["Properties"]["Throttle"] == {"RateLimit": rate, "BurstLimit": burst}
    assert plan["Properties"]["ApiStages"] == [
        {"ApiId": {"Ref": api}, "Stage": {"Ref": stage_id}, "Throttle": {}}
    ]


def test_the_customer_stage_is_live_throttled_traced_and_access_logged_by_key(
    resources: Resources, key_arn: dict[str, Any]
) -> None:
    [stage] = of_customer_api(resources, "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "live"
    assert props["TracingEnabled"] is True
    rate, burst = CUSTOMER_API_THROTTLE
    [settings] = props["MethodSettings"]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (rate, burst)
    assert settings["MetricsEnabled"] is True
    logs = logical_id(resources, "AWS::Logs::LogGroup", "CustomerApiAccessLogs")
    assert props["AccessLogSetting"]["DestinationArn"] == arn(logs)
    assert resources[logs]["Properties"]["KmsKeyId"] == key_arn
    logged = json.loads(props["AccessLogSetting"]["Format"])
    assert logged["keyId"] == "$context.authorizer.principalId"
    assert logged["account"] == "$context.authorizer.account_id"
    assert "Authorization" not in json.dumps(logged)  # never the credential


# --- the key table ---------------------------------------------------------------------------


def test_the_key_table_is_under_the_state_key_recoverable_and_purges_old_links(
    resources: Resources, key_arn: dict[str, Any]
) -> None:
    props = resources[keys_table(resources)]["Properties"]
    assert props["SSESpecification"] == {
        "KMSMasterKeyId": key_arn,
        "SSEEnabled": True,
        "SSEType": "KMS",
    }
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "purge_at", "Enabled": True}
    [index] = props["GlobalSecondaryIndexes"]
    assert index["IndexName"] == ACCOUNT_KEYS_INDEX.name
    assert index["Projection"]["ProjectionType"] == "INCLUDE"
    assert "secret_hash" not in index["Projection"]["NonKeyAttributes"]


def test_only_the_authorizer_reads_the_key_table_and_it_may_only_get_items(
    resources: Resources, key_arn: dict[str, Any]
) -> None:
    table = keys_table(resources)
    # GIVEN every statement of every role that names the key table
    touching = {
        name: [
            s
            for s in _statements(resources, role_id(resources, name))
            if table in json.dumps(s.get("Resource")) or table in json.dumps(s.get("Condition"))
        ]
        for name in FUNCTIONS
    }
    # THEN only the authorizer's: GetItem on the table, Decrypt through DynamoDB for it
    assert {name for name, found in touching.items() if found} == {"customer_authorizer"}
    get, decrypt = touching["customer_authorizer"]
    assert actions_of(get) == ["dynamodb:GetItem"]
    assert resources_of(get) == [arn(table)]
    assert actions_of(decrypt) == ["kms:Decrypt"]
    assert resources_of(decrypt) == [key_arn]
    assert decrypt["Condition"]["StringEquals"]["kms:EncryptionContext:aws:dynamodb:tableName"] == {
        "Ref": table
    }
    # AND the authorizer's role holds nothing else but its log group and X-Ray
    others = {
        a
        for s in _statements(resources, role_id(resources, "customer_authorizer"))
        if s not in (get, decrypt)
        for a in actions_of(s)
    }
    assert others == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }


def _statements(resources: Resources, role: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def test_the_command_line_finds_the_customer_api_by_the_stacks_outputs(
    resources: Resources, template: Any
) -> None:
    outputs = template.to_json()["Outputs"]
    assert outputs[STACK_OUTPUTS.customer_keys_table]["Value"] == {"Ref": keys_table(resources)}
    [plan] = of_type(resources, "AWS::ApiGateway::UsagePlan")
    assert outputs[STACK_OUTPUTS.customer_usage_plan]["Value"] == {"Ref": plan}
    url = json.dumps(outputs[STACK_OUTPUTS.customer_api_url]["Value"])
    assert customer_api(resources) in url
    [stage] = of_customer_api(resources, "AWS::ApiGateway::Stage")
    assert stage in url


WRITES = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:TransactWriteItems",
    "s3:PutObject",
    "s3:DeleteObject",
}


def test_the_customer_api_function_writes_only_its_customers_thresholds(
    resources: Resources,
) -> None:
    # GIVEN the customer API function's statements that write
    statements = _statements(resources, role_id(resources, "customer_api"))
    writes = [s for s in statements if set(actions_of(s)) & WRITES]

    # THEN one statement: UpdateItem and GetItem on the config table, for items whose
    # partition key starts THRESHOLDS# only (docs/table-design.md, "Customer thresholds")
    [thresholds] = writes
    assert actions_of(thresholds) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert resources_of(thresholds) == [
        arn(logical_id(resources, "AWS::DynamoDB::Table", "TablesConfig"))
    ]
    assert thresholds["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["THRESHOLDS#*"]}
    }
