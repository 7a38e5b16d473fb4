"""usage_api: the REST API (API Gateway, IAM auth) on an account's usage and invoices.

    GET /accounts/{account_id}/usage[?period=YYYY-MM]   usage and running charges so far
    GET /accounts/{account_id}/invoices                  the account's invoice records
    GET /accounts/{account_id}/invoices/{number}         one invoice's JSON document

Thin on purpose: it validates the path and query, calls `billing.customer.account_views`, and maps
its exceptions to 400, 404 and 503 with a message (never a stack trace). See
docs/usage-api.md.
"""

from __future__ import annotations

import functools
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import (
    BadRequestError,
    InternalServerError,
    NotFoundError,
    ServiceError,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from billing import wiring
from billing.core.catalog import CatalogError
from billing.core.fields import AccountId, readable
from billing.customer.account_views import AccountViews, BadRequest, NotFound
from billing.store.errors import StoreError

logger = Logger(service="usage_api")
tracer = Tracer(service="usage_api")
app = APIGatewayRestResolver()


@functools.cache
def service() -> AccountViews:
    return wiring.account_views()


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UsageRequest(_Request):
    account_id: AccountId
    period: Annotated[str, StringConstraints(max_length=16)] | None = None


class InvoicesRequest(_Request):
    account_id: AccountId


class InvoiceRequest(_Request):
    account_id: AccountId
    number: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")]


_R = TypeVar("_R", bound=_Request)


def parsed(model: type[_R], **fields: Any) -> _R:
    """The request's parameters, or a 400 naming the first one that is wrong."""
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        name = ".".join(str(part) for part in first["loc"])
        raise BadRequestError(f"{name}: {readable(first)}") from None


@app.get("/accounts/<account_id>/usage")
@tracer.capture_method
def get_usage(account_id: str) -> dict[str, Any]:
    request = parsed(
        UsageRequest,
        account_id=account_id,
        period=app.current_event.get_query_string_value("period"),
    )
    return service().usage(request.account_id, request.period).to_json()


@app.get("/accounts/<account_id>/invoices")
@tracer.capture_method
def list_invoices(account_id: str) -> dict[str, Any]:
    request = parsed(InvoicesRequest, account_id=account_id)
    return {"account_id": request.account_id, "invoices": service().invoices(request.account_id)}


@app.get("/accounts/<account_id>/invoices/<number>")
@tracer.capture_method
def get_invoice(account_id: str, number: str) -> Response[str]:
    request = parsed(InvoiceRequest, account_id=account_id, number=number)
    document = service().invoice_document(request.account_id, request.number)
    return Response(
        status_code=HTTPStatus.OK,
        content_type=content_types.APPLICATION_JSON,
        body=document.decode("utf-8"),
    )


def as_http_error(error: Exception) -> None:
    """The domain's exceptions as HTTP errors with a message a caller can act on."""
    if isinstance(error, NotFound):
        raise NotFoundError(str(error))
    if isinstance(error, BadRequest):
        raise BadRequestError(str(error))
    if isinstance(error, StoreError):
        logger.warning("store unavailable", extra={"error": type(error).__name__})
        raise ServiceError(HTTPStatus.SERVICE_UNAVAILABLE, "billing data is unavailable; try again")
    logger.error("catalog cannot price the account", extra={"error": type(error).__name__})
    raise InternalServerError("the account's plan cannot be priced; an operator is needed")


app.exception_handler([NotFound, BadRequest, StoreError, CatalogError])(as_http_error)


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
    return app.resolve(event, context)
