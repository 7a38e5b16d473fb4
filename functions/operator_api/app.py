"""operator_api: the operator routes of the REST API (API Gateway, IAM auth).

    GET  /operator/accounts[?limit=&next=]     the stored accounts, a page at a time
    GET  /operator/accounts/{account_id}       one account; ETag: its version
    PUT  /operator/accounts/{account_id}       create (If-None-Match: *) or replace (If-Match)
    POST /operator/accounts/{account_id}/end   end its subscription (If-Match), never delete
    GET  /operator/catalog                     the catalog; ETag: its version
    PUT  /operator/catalog                     replace it whole (If-Match, or If-None-Match: *)

Thin on purpose: Powertools validates the path, query, headers and bodies' shapes; the
routes call `billing.operator.config_api.OperatorConfig`, which validates and checks a write
as `billing accounts push` and `billing catalog push` do, on the version read; its refusals
become 400, 404, 409 and 428 with a message (never a stack trace). `openapi_document()` is
these routes as OpenAPI 3.1, kept in docs/operator-openapi.json. See docs/operator-api.md.
"""

# No `from __future__ import annotations`: Powertools reads each route's annotations when
# the route is registered (see functions/usage_api/app.py).

import functools
import json
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, SecurityScheme
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import (
    OpenAPIResponse,
    OpenAPIResponseHeader,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from billing import wiring
from billing.core.catalog import Account, Catalog
from billing.core.fields import AccountId
from billing.customer.api_errors import ApiErrors, errors_of, without_validation_answers
from billing.customer.api_models import ErrorBody
from billing.operator.api_models import AccountPageBody, EndRequest
from billing.operator.config_api import OperatorConfig, Precondition
from billing.operator.errors import OperatorRefusal
from billing.store.config_store import Versioned

logger = Logger(service="operator_api")
tracer = Tracer(service="operator_api")
app = APIGatewayRestResolver(enable_validation=True)


@functools.cache
def service() -> OperatorConfig:
    return wiring.operator_config()


AccountPath = Annotated[AccountId, Path(description="1-64 of A-Z a-z 0-9 . _ -")]
LimitQuery = Annotated[int, Query(ge=1, le=1000, description="Items looked at (1-1000)")]
NextQuery = Annotated[
    str | None, Query(alias="next", max_length=1024, description="The `next` of the last page")
]
IfMatch = Annotated[
    str | None,
    Header(alias="if-match", max_length=100, description="The version (ETag) read"),
]
IfNoneMatch = Annotated[
    str | None,
    Header(alias="if-none-match", max_length=100, description="`*`: create, never replace"),
]
AccountBody = Annotated[
    dict[str, Any],
    Body(
        description="The account as an entry of an accounts file: the Account schema, "
        "`id` left out or the path's"
    ),
]
CatalogBody = Annotated[
    dict[str, Any],
    Body(
        description="The catalog, as a catalog file",
        json_schema_extra={"$ref": "#/components/schemas/Catalog"},
    ),
]


def _error(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ErrorBody}}}


_CONFLICT = _error(
    "The version in If-Match is not the stored one; the account exists already "
    "(If-None-Match: *) or not yet (If-Match); or the change would rewrite rated history "
    "(the message is the one `billing accounts push` gives)"
)
_REQUIRED = _error("Neither If-Match nor If-None-Match: * (a write is never blind)")


_ETAG: dict[str, OpenAPIResponseHeader] = {
    "ETag": {"description": "The version: a strong entity tag", "schema": {"type": "string"}}
}


def _stored(description: str, model: type[Account | Catalog]) -> OpenAPIResponse:
    return {
        "description": description,
        "headers": _ETAG,
        "content": {"application/json": {"model": model}},
    }


def _answers(
    ok: str, model: type[Account | Catalog], *, not_found: str, writes: bool = False
) -> dict[int, OpenAPIResponse]:
    answers: dict[int, OpenAPIResponse] = {
        200: _stored(ok, model),
        **errors_of(not_found=not_found),
    }
    if writes:
        answers |= {409: _CONFLICT, 428: _REQUIRED}
    return dict(sorted(answers.items()))


def _versioned(read: Versioned[Any], status: HTTPStatus = HTTPStatus.OK) -> Response[str]:
    """The stored document as it is stored, with its version as a strong ETag."""
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=read.document,
        headers={"ETag": f'"{read.version}"'},
    )


_UNKNOWN = "An account that is not stored"
_NOT_ANSWERED = "Not answered for a stored item by this route"
_NO_CATALOG = "No catalog has been pushed"


@app.get(
    "/operator/accounts",
    summary="The stored accounts, a page at a time",
    responses={200: {"description": "A page of accounts"}, **errors_of(not_found=_NOT_ANSWERED)},
    tags=["accounts"],
)
@tracer.capture_method
def list_accounts(limit: LimitQuery = 100, next_token: NextQuery = None) -> AccountPageBody:
    page = service().accounts_page(limit, next_token)
    documents = [json.loads(account.model_dump_json()) for account in page.accounts]
    return AccountPageBody(accounts=documents, next=page.next)


@app.get(
    "/operator/accounts/<account_id>",
    summary="One account as stored, with its version",
    responses=_answers("The account", Account, not_found=_UNKNOWN),
    tags=["accounts"],
)
@tracer.capture_method
def get_account(account_id: AccountPath) -> Response[str]:
    return _versioned(service().account(account_id))


@app.put(
    "/operator/accounts/<account_id>",
    summary="Create (If-None-Match: *) or replace (If-Match) one account, as a push does",
    responses={
        **_answers(
            "The account as stored, replaced", Account, not_found=_NOT_ANSWERED, writes=True
        ),
        201: _stored("The account as stored, created", Account),
    },
    tags=["accounts"],
)
@tracer.capture_method
def put_account(
    account_id: AccountPath,
    account: AccountBody,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> Response[str]:
    precondition = Precondition(if_match, if_none_match)
    stored = service().put_account(account_id, account, precondition)
    created = if_none_match is not None
    return _versioned(stored, HTTPStatus.CREATED if created else HTTPStatus.OK)


@app.post(
    "/operator/accounts/<account_id>/end",
    summary="End the account's subscription on a later day (the account is kept)",
    responses=_answers("The account as stored, ended", Account, not_found=_UNKNOWN, writes=True),
    tags=["accounts"],
)
@tracer.capture_method
def end_account(
    account_id: AccountPath,
    request: Annotated[EndRequest, Body()],
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> Response[str]:
    precondition = Precondition(if_match, if_none_match)
    return _versioned(service().end_account(account_id, request.end, precondition))


@app.get(
    "/operator/catalog",
    summary="The catalog as stored, with its version",
    responses=_answers("The catalog", Catalog, not_found=_NO_CATALOG),
    tags=["catalog"],
)
@tracer.capture_method
def get_catalog() -> Response[str]:
    return _versioned(service().catalog())


@app.put(
    "/operator/catalog",
    summary="Replace the catalog whole (If-Match), or store the first (If-None-Match: *)",
    responses={
        **_answers(
            "The catalog as stored, replaced", Catalog, not_found=_NOT_ANSWERED, writes=True
        ),
        201: _stored("The catalog as stored, the first", Catalog),
    },
    tags=["catalog"],
)
@tracer.capture_method
def put_catalog(
    catalog: CatalogBody, if_match: IfMatch = None, if_none_match: IfNoneMatch = None
) -> Response[str]:
    stored = service().put_catalog(catalog, Precondition(if_match, if_none_match))
    created = if_none_match is not None
    return _versioned(stored, HTTPStatus.CREATED if created else HTTPStatus.OK)


def refused(error: OperatorRefusal) -> Response[Any]:
    """The service's refusals, with their status and message."""
    raise ServiceError(error.status, str(error))


ApiErrors(logger).register(app)
app.exception_handler(OperatorRefusal)(refused)


def audit(event: dict[str, Any]) -> dict[str, Any]:
    """Who asks for, or changes, what: one log line per request, beside the API's access
    log. Ids and IAM principals only, never a body."""
    context = event.get("requestContext") or {}
    identity = context.get("identity") or {}
    return {
        "caller_arn": identity.get("userArn"),
        "caller_account": identity.get("accountId"),
        "method": event.get("httpMethod"),
        "account_requested": (event.get("pathParameters") or {}).get("account_id"),
        "route": event.get("resource"),
    }


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info("operator request", extra=audit(event))
    return app.resolve(event, context)


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
    """The operator routes as OpenAPI 3.1 JSON, as docs/operator-openapi.json keeps it."""
    return without_validation_answers(
        app.get_openapi_json_schema(
            title="Usage billing API: operator routes",
            version="v1",
            description="The accounts and the catalog, read and written on their versions "
            "(docs/operator-api.md)",
            security_schemes=_SECURITY_SCHEMES,
            security=[{SIGV4: []}],
        )
    )
