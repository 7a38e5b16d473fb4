"""The customer API: a REST API of its own (not the operators' IAM-only usage API), where a
customer's key or portal link reads that customer's account (docs/customer-access.md).

- `/v1/{proxy+}`, every method: the `customer_api` function, behind the Lambda REQUEST
  authorizer `customer_authorizer` (identity source: the Authorization header; its answer
  kept for the stage's cache time) and a usage plan that throttles each key by the API key
  the authorizer names (API key source AUTHORIZER).
- `GET /portal`: the portal page, static, no data, no authorizer (the page sends the
  credential from its URL's fragment as a Bearer header).
- The key table (customer-managed key, point-in-time recovery), which only the authorizer
  reads (GetItem) and only the operator's command line writes.
"""

from __future__ import annotations

import json
from typing import Final

from aws_cdk import Duration, Stack, aws_apigateway, aws_dynamodb, aws_kms, aws_lambda, aws_s3
from constructs import Construct

from billing.customer.gateway_answers import (
    GATEWAY_ANSWERS,
    JSON,
    PORTAL_CONTENT_TYPE,
    PORTAL_HEADERS,
    PORTAL_PAGE,
)
from billing.settings import AUTHORIZER_CACHE_ENV, CUSTOMER_KEYS_TABLE, INVOICE_BUCKET_ENV
from stacks.common import (
    HandlerFunction,
    acknowledge,
    acknowledge_object_prefix,
    encrypted_log_group,
)
from stacks.invoicing import INVOICE_PREFIX
from stacks.ledger import Ledger, table
from stacks.settings import (
    CUSTOMER_API,
    CUSTOMER_API_THROTTLE,
    CUSTOMER_AUTHORIZER,
    CUSTOMER_KEY_THROTTLE,
    Stage,
)

STAGE_NAME: Final = "live"
AUTHORIZATION_HEADER: Final = "Authorization"

# One line per request: which key (and so which account) asked for what, how the
# authorizer judged it, and the answer. Never the credential (the header is not logged).
ACCESS_LOG_FORMAT: Final = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "path": "$context.path",
        "status": "$context.status",
        "keyId": "$context.authorizer.principalId",
        "account": "$context.authorizer.account_id",
        "kind": "$context.authorizer.kind",
        "authorizerStatus": "$context.authorizer.status",
        "authorizerLatencyMs": "$context.authorizer.latency",
        "authorizerError": "$context.authorizer.error",
        "sourceIp": "$context.identity.sourceIp",
        "userAgent": "$context.identity.userAgent",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
        "integrationLatencyMs": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
        "errorType": "$context.error.responseType",
    }
)


class CustomerApi(Construct):
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
        self.keys_table: aws_dynamodb.Table = table(self, CUSTOMER_KEYS_TABLE, key=key, stage=stage)
        self.authorizer_function = HandlerFunction(
            self,
            "CustomerAuthorizer",
            settings=CUSTOMER_AUTHORIZER,
            layer=layer,
            key=key,
            stage=stage,
            environment={
                CUSTOMER_KEYS_TABLE.env_var: self.keys_table.table_name,
                AUTHORIZER_CACHE_ENV: str(stage.customer_authorizer_cache_seconds),
            },
        )
        # The routes' function reads what the usage API reads; the customer thresholds it
        # also reads and writes are granted by its row in stacks/permissions.py.
        self.handler = HandlerFunction(
            self,
            "CustomerRoutes",
            settings=CUSTOMER_API,
            layer=layer,
            key=key,
            stage=stage,
            environment={
                **ledger.environment(),
                INVOICE_BUCKET_ENV: invoice_bucket.bucket_name,
            },
        )
        # Invoice documents are read (and presigned) under the invoice prefix only.
        acknowledge_object_prefix(self.handler, invoice_bucket, INVOICE_PREFIX)
        self.api = self._rest_api(key, stage)
        self.usage_plan = self._usage_plan()
        self._routes(stage)
        self._gateway_answers()
        self._acknowledge()

    def _rest_api(self, key: aws_kms.IKey, stage: Stage) -> aws_apigateway.RestApi:
        self.access_logs = encrypted_log_group(self, "AccessLogs", key=key, stage=stage)
        rate, burst = CUSTOMER_API_THROTTLE
        api = aws_apigateway.RestApi(
            self,
            "Api",
            rest_api_name=f"{Stack.of(self).stack_name}-customer",
            description="Customers' own usage, charges and invoices (customer keys)",
            endpoint_types=[aws_apigateway.EndpointType.REGIONAL],
            # Requests are counted under the API key the authorizer names, never one a
            # client sends (x-api-key is ignored).
            api_key_source_type=aws_apigateway.ApiKeySourceType.AUTHORIZER,
            cloud_watch_role=False,  # the account-wide role is not this stack's to own
            deploy_options=aws_apigateway.StageOptions(
                stage_name=STAGE_NAME,
                access_log_destination=aws_apigateway.LogGroupLogDestination(self.access_logs),
                access_log_format=aws_apigateway.AccessLogFormat.custom(ACCESS_LOG_FORMAT),
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=rate,
                throttling_burst_limit=burst,
            ),
        )
        # The stack declares the URL once, as CustomerApiUrl.
        api.node.try_remove_child("Endpoint")
        return api

    def _usage_plan(self) -> aws_apigateway.UsagePlan:
        """Each key's own throttle: `billing keys create` adds the key's API key to it."""
        rate, burst = CUSTOMER_KEY_THROTTLE
        return self.api.add_usage_plan(
            "PerKey",
            description="Each customer key's requests, counted under its own API key",
            throttle=aws_apigateway.ThrottleSettings(rate_limit=rate, burst_limit=burst),
            api_stages=[
                aws_apigateway.UsagePlanPerApiStage(api=self.api, stage=self.api.deployment_stage)
            ],
        )

    def _routes(self, stage: Stage) -> None:
        authorizer = aws_apigateway.RequestAuthorizer(
            self,
            "Authorizer",
            handler=self.authorizer_function.function,
            identity_sources=[aws_apigateway.IdentitySource.header(AUTHORIZATION_HEADER)],
            results_cache_ttl=Duration.seconds(stage.customer_authorizer_cache_seconds),
        )
        validator = self.api.add_request_validator(
            "Requests", validate_request_parameters=True, validate_request_body=True
        )
        integration = aws_apigateway.LambdaIntegration(
            self.handler.function, proxy=True, allow_test_invoke=False
        )
        # Every method of every data route: behind the authorizer, counted under a key.
        self.data_routes = self.api.root.add_resource("v1").add_resource("{proxy+}")
        self.data_routes.add_method(
            "ANY",
            integration,
            authorizer=authorizer,
            authorization_type=aws_apigateway.AuthorizationType.CUSTOM,
            api_key_required=True,
            request_validator=validator,
        )
        portal = self.api.root.add_resource("portal")
        self.portal_method = portal.add_method(
            "GET",
            _portal_page(),
            authorization_type=aws_apigateway.AuthorizationType.NONE,
            method_responses=[
                aws_apigateway.MethodResponse(
                    status_code="200",
                    response_parameters={
                        f"method.response.header.{name}": True for name, _ in PORTAL_HEADERS
                    },
                )
            ],
        )

    def _gateway_answers(self) -> None:
        for name, answer in GATEWAY_ANSWERS.items():
            self.api.add_gateway_response(
                f"{name.title().replace('_', '')}Answer",
                type=aws_apigateway.ResponseType.of(name),
                status_code=str(answer.status),
                response_headers={header: f"'{value}'" for header, value in answer.headers},
                templates={JSON: answer.body()},
            )

    def _acknowledge(self) -> None:
        acknowledge(
            self.api,
            "AwsSolutions::AwsSolutions-APIG6",
            "Execution logging needs API Gateway's account-wide CloudWatch role, which one "
            "stack must not own for the whole account; every request is in the access log",
        )
        acknowledge(
            self.api,
            "AwsSolutions::AwsSolutions-APIG3",
            "Every data route needs a customer key the authorizer checks; each key is "
            "throttled by the usage plan and the stage as a whole; a web ACL can be attached "
            "by the operator where its cost is warranted",
        )
        acknowledge(
            self.api,
            "AwsSolutions::AwsSolutions-COG4",
            "Customers authenticate with API keys of their own (a Lambda REQUEST authorizer "
            "checks them), not as users of a Cognito user pool",
        )
        acknowledge(
            self.portal_method,
            "AwsSolutions::AwsSolutions-APIG4",
            "The portal page is static and holds no data: it reads the credential from its "
            "URL's fragment and calls the data routes, which all need it",
        )

    @property
    def functions(self) -> list[HandlerFunction]:
        return [self.authorizer_function, self.handler]


def _portal_page() -> aws_apigateway.MockIntegration:
    """The portal page, answered by API Gateway itself (no function, no data)."""
    headers = {f"method.response.header.{name}": f"'{value}'" for name, value in PORTAL_HEADERS}
    return aws_apigateway.MockIntegration(
        request_templates={JSON: '{"statusCode": 200}'},
        integration_responses=[
            aws_apigateway.IntegrationResponse(
                status_code="200",
                response_parameters=headers,
                # chosen by the request's Accept: a browser's asks for text/html, other
                # clients' fall back to the first (the same page)
                response_templates={
                    PORTAL_CONTENT_TYPE.split(";")[0]: PORTAL_PAGE,
                    JSON: PORTAL_PAGE,
                },
            )
        ],
    )
