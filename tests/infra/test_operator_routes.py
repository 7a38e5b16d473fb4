"""The operator routes of the usage API in the template: every method under /operator
needs IAM (SigV4) behind the API's resource policy and reaches only operator_api, and no
route of the customer API (the one customer keys open) reaches operator_api."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import actions_of, of_type, resources_of, role_statements
from tests.infra.test_customer_api import customer_api, of_customer_api, path_of
from tests.infra.test_stack import (
    arn,
    function_id,
    mentions,
    role_id,
    table_id,
    usage_api_resources,
)

Resources = dict[str, Any]

OPERATOR_ROUTES = {
    ("/operator/accounts", "GET"),
    ("/operator/accounts/{account_id}", "GET"),
    ("/operator/accounts/{account_id}", "PUT"),
    ("/operator/accounts/{account_id}/end", "POST"),
    ("/operator/catalog", "GET"),
    ("/operator/catalog", "PUT"),
}


def methods_by_route(methods: dict[str, dict[str, Any]], resources: Resources) -> dict[Any, Any]:
    return {
        (
            path_of(resources, m["Properties"]["ResourceId"]["Ref"]),
            m["Properties"]["HttpMethod"],
        ): m["Properties"]
        for m in methods.values()
    }


def test_every_operator_route_needs_iam_and_reaches_only_the_operator_function(
    resources: Resources,
) -> None:
    # GIVEN the usage API's methods under /operator
    operator = function_id(resources, "operator_api")
    routes = methods_by_route(usage_api_resources(resources, "AWS::ApiGateway::Method"), resources)
    under_operator = {route: m for route, m in routes.items() if route[0].startswith("/operator")}

    # THEN they are exactly the documented routes, each with IAM authorization, proxied to
    # operator_api
    assert set(under_operator) == OPERATOR_ROUTES
    for route, method in under_operator.items():
        assert method["AuthorizationType"] == "AWS_IAM", route
        assert method["Integration"]["Type"] == "AWS_PROXY", route
        assert mentions(method["Integration"]["Uri"], operator), route
    # AND no other method of the API reaches operator_api
    others = [m for route, m in routes.items() if route not in OPERATOR_ROUTES]
    assert others
    assert not any(mentions(m["Integration"], operator) for m in others)


def test_no_route_of_the_customer_api_reaches_the_operator_function(
    resources: Resources,
) -> None:
    # GIVEN the function behind the operator routes
    operator = function_id(resources, "operator_api")
    # THEN none of the customer API's methods (behind the customer keys' authorizer, or the
    # static portal) integrates it
    methods = of_customer_api(resources, "AWS::ApiGateway::Method")
    assert methods
    assert not any(mentions(m["Properties"], operator) for m in methods.values())
    # AND API Gateway may invoke it only from the usage API, never the customer API
    permissions = [
        p["Properties"]
        for p in of_type(resources, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == arn(operator)
    ]
    assert permissions
    [usage_api] = [n for n in of_type(resources, "AWS::ApiGateway::RestApi") if n.startswith("Api")]
    for permission in permissions:
        assert permission["Principal"] == "apigateway.amazonaws.com"
        source = json.dumps(permission["SourceArn"])
        assert usage_api in source
        assert customer_api(resources) not in source
        assert "/operator/" in source


def test_the_customer_functions_cannot_write_accounts_or_the_catalog(resources: Resources) -> None:
    # A customer key reaches customer_api (and its authorizer): neither may put an item
    # in the config table, where the accounts and the catalog are.
    config = arn(table_id(resources, "Config"))
    for name in ("customer_api", "customer_authorizer"):
        puts = [
            s
            for s in _statements(resources, name)
            if "dynamodb:PutItem" in actions_of(s) and config in resources_of(s)
        ]
        assert puts == [], name


def test_the_operator_function_writes_only_profiles_and_the_catalog(resources: Resources) -> None:
    config = arn(table_id(resources, "Config"))
    writes = [
        s
        for s in _statements(resources, "operator_api")
        if config in resources_of(s)
        and {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} & set(actions_of(s))
    ]
    # PutItem of a profile or the catalog; UpdateItem of the catalog's `accounts_written`,
    # the mark an account write sets in the same transaction (docs/operator-api.md)
    assert [actions_of(s) for s in writes] == [["dynamodb:PutItem", "dynamodb:UpdateItem"]]
    assert writes[0]["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ACCOUNT#*", "CATALOG"]}
    }
    every = {a for s in _statements(resources, "operator_api") for a in actions_of(s)}
    assert "dynamodb:DeleteItem" not in every


def _statements(resources: Resources, name: str) -> list[dict[str, Any]]:
    return role_statements(resources, role_id(resources, name))
