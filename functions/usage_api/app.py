"""usage_api: the REST API (API Gateway, IAM auth) on an account's usage and invoices.

    GET /accounts/{account_id}/usage[?period=YYYY-MM]   usage and running charges so far
    GET /accounts/{account_id}/explanation[?period=]    each invoice line and what makes it
    GET /accounts/{account_id}/invoices                  the account's invoice records
    GET /accounts/{account_id}/invoices/{number}         one invoice's JSON document
    GET /accounts/{account_id}/credit-notes              the account's credit notes
    GET /accounts/{account_id}/adjustments               the account's adjustment invoices

Thin on purpose: Powertools' resolver validates the typed path and query parameters; the
routes call `billing.customer.account_views` and answer with its models
(`billing.customer.api_models`), which refuse a body the document does not describe; and
the exceptions become 400, 404, 500 and 503 with a message (never a stack trace).
`openapi_document()` is the API as OpenAPI 3.1, kept in docs/openapi.json. See
docs/usage-api.md.
"""

# No `from __future__ import annotations`: Powertools reads each route's annotations when
# the route is registered, through the tracer's wrapper, whose globals are the tracer's and
# could not resolve this module's names from strings.

import functools
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, SecurityScheme
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import StringConstraints

from billing import wiring
from billing.core.fields import AccountId
from billing.customer.account_views import AccountViews
from billing.customer.api_errors import ApiErrors, errors_of, without_validation_answers
from billing.customer.api_models import (
    AdjustmentListBody,
    CreditNoteListBody,
    ExplanationBody,
    InvoiceDocumentBody,
    InvoiceListBody,
    UsageReportBody,
)

logger = Logger(service="usage_api")
tracer = Tracer(service="usage_api")
app = APIGatewayRestResolver(enable_validation=True)


@functools.cache
def service() -> AccountViews:
    return wiring.account_views()


AccountPath = Annotated[AccountId, Path(description="1-64 of A-Z a-z 0-9 . _ -")]
NumberPath = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$"),
    Path(description="The invoice number, e.g. INV-2026-000042"),
]
# Only bounded here: the period's form is the domain's to judge (Period.parse), with the
# message it gives.
PeriodQuery = Annotated[
    str | None,
    Query(
        max_length=16,
        description="YYYY-MM; by default the period holding now in the account's time zone",
    ),
]


def _errors(*, not_found: str, internal: str | None = None) -> dict[int, OpenAPIResponse]:
    """The error answers a route gives, each `{"statusCode": N, "message": "..."}`."""
    return errors_of(not_found=not_found, internal=internal)


_UNKNOWN = "An unknown account"
_BAD_ANSWER = "An answer that does not match its own model"


@app.get(
    "/accounts/<account_id>/usage",
    summary="The account's usage, running charges and the invoice they make now",
    responses={
        200: {"description": "The usage report"},
        **_errors(
            not_found=_UNKNOWN,
            internal=f"The account's plan is missing from the catalog, or: {_BAD_ANSWER}",
        ),
    },
    tags=["usage"],
)
@tracer.capture_method
def get_usage(account_id: AccountPath, period: PeriodQuery = None) -> UsageReportBody:
    return UsageReportBody.model_validate(service().usage(account_id, period).to_json())


@app.get(
    "/accounts/<account_id>/explanation",
    summary="Each line of the period's invoice with the events it counts and its price steps",
    responses={
        200: {"description": "The explanation"},
        **_errors(
            not_found=_UNKNOWN,
            internal=f"The account's plan is missing from the catalog, or: {_BAD_ANSWER}",
        ),
    },
    tags=["usage"],
)
@tracer.capture_method
def get_explanation(account_id: AccountPath, period: PeriodQuery = None) -> ExplanationBody:
    return ExplanationBody.model_validate(service().explanation(account_id, period))


@app.get(
    "/accounts/<account_id>/invoices",
    summary="The account's invoices, oldest period first",
    responses={
        200: {"description": "The account's invoice records"},
        **_errors(not_found=_UNKNOWN, internal=_BAD_ANSWER),
    },
    tags=["invoices"],
)
@tracer.capture_method
def list_invoices(account_id: AccountPath) -> InvoiceListBody:
    return InvoiceListBody(account_id=account_id, invoices=service().invoices(account_id))


@app.get(
    "/accounts/<account_id>/credit-notes",
    summary="The account's credit notes, by the invoice they correct",
    responses={
        200: {"description": "The account's credit notes"},
        **_errors(not_found=_UNKNOWN, internal=_BAD_ANSWER),
    },
    tags=["invoices"],
)
@tracer.capture_method
def list_credit_notes(account_id: AccountPath) -> CreditNoteListBody:
    return CreditNoteListBody(
        account_id=account_id, credit_notes=service().credit_notes(account_id)
    )


@app.get(
    "/accounts/<account_id>/adjustments",
    summary="The account's adjustment invoices, by the invoice they correct",
    responses={
        200: {"description": "The account's adjustment invoices"},
        **_errors(not_found=_UNKNOWN, internal=_BAD_ANSWER),
    },
    tags=["invoices"],
)
@tracer.capture_method
def list_adjustments(account_id: AccountPath) -> AdjustmentListBody:
    return AdjustmentListBody(account_id=account_id, adjustments=service().adjustments(account_id))


@app.get(
    "/accounts/<account_id>/invoices/<number>",
    summary="One invoice's JSON document, byte for byte as stored",
    responses={
        200: {
            "description": "The invoice document",
            "content": {"application/json": {"model": InvoiceDocumentBody}},
        },
        **_errors(
            not_found=f"{_UNKNOWN}; no such invoice among the account's own (another "
            "account's number included); or an invoice numbered but not stored yet"
        ),
    },
    tags=["invoices"],
)
@tracer.capture_method
def get_invoice(account_id: AccountPath, number: NumberPath) -> Response[str]:
    document = service().invoice_document(account_id, number)
    return Response(
        status_code=HTTPStatus.OK,
        content_type=content_types.APPLICATION_JSON,
        body=document.decode("utf-8"),
    )


ApiErrors(logger).register(app)


def audit(event: dict[str, Any]) -> dict[str, Any]:
    """Who asks for which account: one log line per request, beside the API's access log.
    Account ids and IAM principals only, never what the answer holds."""
    context = event.get("requestContext") or {}
    identity = context.get("identity") or {}
    return {
        "caller_arn": identity.get("userArn"),
        "caller_account": identity.get("accountId"),
        "account_requested": (event.get("pathParameters") or {}).get("account_id"),
        "route": event.get("resource"),
    }


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info("account data requested", extra=audit(event))
    return app.resolve(single_valued(event), context)


def single_valued(event: dict[str, Any]) -> dict[str, Any]:
    """The event with each query parameter given once: its last value, as API Gateway's
    single-value map holds it (a repeated `period` is answered as it always was)."""
    repeated = event.get("multiValueQueryStringParameters") or {}
    if not any(len(values) > 1 for values in repeated.values()):
        return event
    last = {name: values[-1:] for name, values in repeated.items()}
    return {**event, "multiValueQueryStringParameters": last}


# Every route is called with SigV4 (API Gateway's IAM authorization), and only by the
# principals the API's resource policy names (docs/infrastructure.md).
SIGV4 = "sigv4"
_SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    SIGV4: APIKey(
        name="Authorization",
        in_=APIKeyIn.header,
        description="AWS Signature Version 4 (IAM); only principals the API's resource "
        "policy names are let in",
        openapi_extensions={"x-amazon-apigateway-authtype": "awsSigv4"},
    )
}


def openapi_document() -> str:
    """The API as OpenAPI 3.1 JSON, as docs/openapi.json keeps it (Powertools' 422
    answers left out: validation errors are answered 400)."""
    return without_validation_answers(
        app.get_openapi_json_schema(
            title="Usage billing API",
            version="v1",
            description="An account's usage, running charges and invoices (docs/usage-api.md)",
            security_schemes=_SECURITY_SCHEMES,
            security=[{SIGV4: []}],
        )
    )
