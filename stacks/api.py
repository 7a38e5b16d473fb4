"""The usage API: API Gateway (REST, IAM authorization) in front of the usage_api function,
which reads an account's usage, running charges and invoices, and of the operator_api
function under /operator, which reads and writes the accounts and the catalog
(docs/operator-api.md). Every method of both needs SigV4; no customer key reaches either
(the customer API is another REST API, with its own function)."""

from __future__ import annotations

import json
from typing import Any, Final

from aws_cdk import Stack, aws_apigateway, aws_iam, aws_kms, aws_lambda, aws_s3
from constructs import Construct

from billing.settings import INVOICE_BUCKET_ENV
from stacks.common import (
    HandlerFunction,
    acknowledge,
    acknowledge_object_prefix,
    encrypted_log_group,
)
from stacks.invoicing import INVOICE_PREFIX
from stacks.ledger import Ledger
from stacks.settings import OPERATOR_API, USAGE_API, USAGE_API_THROTTLE, ApiAccess, Stage

# One line per request: who called (the IAM principal, its account and organization, the
# source address) and what they asked for (the request path, which names the account, as
# well as the route template). CloudTrail does not record calls to a deployed API, so this
# log is the record of who read which account.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "path": "$context.path",
        "status": "$context.status",
        "callerArn": "$context.identity.userArn",
        "caller": "$context.identity.caller",
        "callerAccount": "$context.identity.accountId",
        "callerOrg": "$context.identity.principalOrgId",
        "sourceIp": "$context.identity.sourceIp",
        "userAgent": "$context.identity.userAgent",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
        "integrationLatencyMs": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
        "errorType": "$context.error.responseType",
    }
)

INVOKE: Final = "execute-api:Invoke"


def resource_policy(stack: Stack, access: ApiAccess) -> aws_iam.PolicyDocument:
    """Who may call the API, decided by the API itself and not only by callers' IAM
    policies: IAM authorization alone lets any principal of the account whose own policy
    allows execute-api:Invoke read every account.

    Allowed: the principals named in `usage_api_principals` (operators' and services'
    roles), or else this account's; and, when `usage_api_organization` is set, principals
    of that organization. Everyone else is denied explicitly, which also overrides an IAM
    policy of this account that allows more."""
    api = stack.format_arn(service="execute-api", resource="*")
    statements = []
    # Conditions in one statement all hold together: denied when not named (nor of this
    # account) AND not of the organization.
    not_named: dict[str, dict[str, Any]]
    if access.principals:
        principals: list[aws_iam.IPrincipal] = [aws_iam.ArnPrincipal(a) for a in access.principals]
        statements.append(
            aws_iam.PolicyStatement(
                sid="ConfiguredPrincipalsMayRead",
                principals=principals,
                actions=[INVOKE],
                resources=[api],
            )
        )
        not_named = {"ArnNotLike": {"aws:PrincipalArn": list(access.principals)}}
    else:
        statements.append(
            aws_iam.PolicyStatement(
                sid="ThisAccountMayRead",
                principals=[aws_iam.AccountPrincipal(stack.account)],
                actions=[INVOKE],
                resources=[api],
            )
        )
        not_named = {"StringNotEquals": {"aws:PrincipalAccount": stack.account}}
    if access.organization:
        statements.append(
            aws_iam.PolicyStatement(
                sid="OrganizationMayRead",
                principals=[aws_iam.AnyPrincipal()],
                actions=[INVOKE],
                resources=[api],
                conditions={"StringEquals": {"aws:PrincipalOrgID": access.organization}},
            )
        )
        not_named = {
            **not_named,
            "StringNotEquals": {
                **not_named.get("StringNotEquals", {}),
                "aws:PrincipalOrgID": access.organization,
            },
        }
    statements.append(
        aws_iam.PolicyStatement(
            sid="NobodyElse",
            effect=aws_iam.Effect.DENY,
            principals=[aws_iam.AnyPrincipal()],
            actions=[INVOKE],
            resources=[api],
            conditions=not_named,
        )
    )
    return aws_iam.PolicyDocument(statements=statements)


class UsageApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: aws_kms.IKey,
        layer: aws_lambda.ILayerVersion,
        ledger: Ledger,
        invoice_bucket: aws_s3.IBucket,
        stage: Stage,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = HandlerFunction(
            self,
            "UsageApi",
            settings=USAGE_API,
            layer=layer,
            key=key,
            stage=stage,
            environment={
                **ledger.environment(),
                INVOICE_BUCKET_ENV: invoice_bucket.bucket_name,
            },
        )
        # Reads only (stacks/permissions.py): billing.customer.account_views never writes.
        acknowledge_object_prefix(self.handler, invoice_bucket, INVOICE_PREFIX)

        self.access_logs = encrypted_log_group(self, "AccessLogs", key=key, stage=stage)
        rate, burst = USAGE_API_THROTTLE
        self.api = aws_apigateway.RestApi(
            self,
            "Api",
            description="An account's usage, running charges and invoices (IAM auth)",
            policy=resource_policy(Stack.of(self), stage.api_access),
            endpoint_types=[aws_apigateway.EndpointType.REGIONAL],
            # The account-wide CloudWatch role is not this stack's to own (see below).
            cloud_watch_role=False,
            deploy_options=aws_apigateway.StageOptions(
                stage_name="v1",
                access_log_destination=aws_apigateway.LogGroupLogDestination(self.access_logs),
                access_log_format=aws_apigateway.AccessLogFormat.custom(ACCESS_LOG_FORMAT),
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=rate,
                throttling_burst_limit=burst,
            ),
            default_method_options=aws_apigateway.MethodOptions(
                authorization_type=aws_apigateway.AuthorizationType.IAM
            ),
        )
        # The stack declares the URL once, under the key the command line knows
        # (UsageApiUrl); RestApi's own generated output would be a second, unnamed one.
        self.api.node.try_remove_child("Endpoint")
        # Required path parameters are checked before the function runs. The routes are
        # GETs without a body, so body validation (on, for completeness) has nothing to do.
        validator = self.api.add_request_validator(
            "Requests", validate_request_parameters=True, validate_request_body=True
        )
        # No test invoke: API Gateway's console test skips the resource policy (it needs only
        # apigateway:POST on the method), and its calls are not in the access log.
        integration = aws_apigateway.LambdaIntegration(
            self.handler.function, proxy=True, allow_test_invoke=False
        )

        def get(resource: aws_apigateway.IResource, parameters: dict[str, bool]) -> None:
            resource.add_method(
                "GET",
                integration,
                request_validator=validator,
                request_parameters={f"method.request.{k}": v for k, v in parameters.items()},
            )

        account = self.api.root.add_resource("accounts").add_resource("{account_id}")
        for name in ("usage", "explanation"):
            get(
                account.add_resource(name),
                {"path.account_id": True, "querystring.period": False},
            )
        invoices = account.add_resource("invoices")
        get(invoices, {"path.account_id": True})
        get(invoices.add_resource("{number}"), {"path.account_id": True, "path.number": True})
        for name in ("credit-notes", "adjustments"):
            get(account.add_resource(name), {"path.account_id": True})
        self._operator_routes(layer=layer, key=key, ledger=ledger, stage=stage, validator=validator)

        acknowledge(
            self.api,
            "AwsSolutions::AwsSolutions-APIG6",
            "Execution logging needs API Gateway's account-wide CloudWatch role, which one "
            "stack must not own for the whole account; every request is in the access log",
        )
        acknowledge(
            self.api,
            "AwsSolutions::AwsSolutions-APIG3",
            "Callers are IAM principals (SigV4) and the stage is throttled; no anonymous "
            "traffic reaches the function for a web ACL to filter",
        )
        acknowledge(
            self.api,
            "AwsSolutions::AwsSolutions-COG4",
            "Callers are IAM principals of the operator's accounts, authorized with SigV4, "
            "not end users of a Cognito user pool",
        )

    def _operator_routes(
        self,
        *,
        layer: aws_lambda.ILayerVersion,
        key: aws_kms.IKey,
        ledger: Ledger,
        stage: Stage,
        validator: aws_apigateway.RequestValidator,
    ) -> None:
        """/operator: the accounts and the catalog, on a function of their own (the only
        one that writes them), behind the same IAM authorization and resource policy."""
        self.operator_handler = HandlerFunction(
            self,
            "OperatorApi",
            settings=OPERATOR_API,
            layer=layer,
            key=key,
            stage=stage,
            environment=ledger.environment(),
        )
        integration = aws_apigateway.LambdaIntegration(
            self.operator_handler.function, proxy=True, allow_test_invoke=False
        )

        def method(
            resource: aws_apigateway.IResource, verb: str, parameters: dict[str, bool]
        ) -> None:
            resource.add_method(
                verb,
                integration,
                authorization_type=aws_apigateway.AuthorizationType.IAM,
                request_validator=validator,
                request_parameters={f"method.request.{k}": v for k, v in parameters.items()},
            )

        operator = self.api.root.add_resource("operator")
        accounts = operator.add_resource("accounts")
        method(accounts, "GET", {"querystring.limit": False, "querystring.next": False})
        account = accounts.add_resource("{account_id}")
        method(account, "GET", {"path.account_id": True})
        method(account, "PUT", {"path.account_id": True})
        method(account.add_resource("end"), "POST", {"path.account_id": True})
        catalog = operator.add_resource("catalog")
        method(catalog, "GET", {})
        method(catalog, "PUT", {})

    @property
    def functions(self) -> list[HandlerFunction]:
        return [self.handler, self.operator_handler]
