"""customer_api: the customer API (API Gateway, a key per account, custom authorizer).

    GET /v1/accounts/{account_id}                         the account as its customer sees it
    GET /v1/accounts/{account_id}/usage[?period=]         usage and running charges per meter
    GET /v1/accounts/{account_id}/usage/daily[?period=]   usage per meter and local day
    GET /v1/accounts/{account_id}/preview[?period=]       the invoice the period makes now
    GET /v1/accounts/{account_id}/explanation[?period=]   each line and what makes it
    GET /v1/accounts/{account_id}/credits                 prepaid credit balances
    GET /v1/accounts/{account_id}/invoices                issued invoices
    GET /v1/accounts/{account_id}/invoices/{number}       one invoice, and a link to its PDF
    GET /v1/accounts/{account_id}/credit-notes            credit notes issued against them
    GET /v1/accounts/{account_id}/credit-notes/{number}   one credit note, and its PDF's link
    GET /v1/accounts/{account_id}/adjustments             adjustment invoices issued on them
    GET /v1/accounts/{account_id}/adjustments/{number}    one adjustment, and its PDF's link
    GET|PUT /v1/accounts/{account_id}/thresholds          the customer's own spend thresholds

Who asks comes from the authorizer only (`requestContext.authorizer`: `account_id`,
`key_id`, `kind`). One middleware (`only_own_account`) runs before every route: an account
named in the path, the query or the body that is not the caller's is answered 403, the
same whether it exists or not, before anything of it is read; a query parameter the route
does not take is a 400. The rest mirrors the usage API (functions/usage_api): Powertools
validates, the routes call `billing.customer.customer_views`, errors are `{"statusCode",
"message"}`. `openapi_document()` is kept in docs/customer-openapi.json. See
docs/customer-api.md.
"""

# No `from __future__ import annotations`: Powertools reads each route's annotations when
# the route is registered (see functions/usage_api/app.py).

import functools
import json
from http import HTTPStatus
from typing import Annotated, Any, Final

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import (
    APIGatewayRestResolver,
    Request,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.exceptions import (
    BadRequestError,
    ServiceError,
    UnauthorizedError,
)
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, SecurityScheme
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import StringConstraints

from billing import wiring
from billing.core.fields import AccountId
from billing.core.invoice import utc_text
from billing.customer.api_errors import ApiErrors, errors_of, without_validation_answers
from billing.customer.api_models import (
    AdjustmentListBody,
    CreditNoteListBody,
    ExplanationBody,
    InvoiceListBody,
    UsageReportBody,
)
from billing.customer.customer_models import (
    AccountBody,
    AdjustmentWithLinkBody,
    CreditNoteWithLinkBody,
    CreditsBody,
    DailyUsageBody,
    InvoiceWithLinkBody,
    PreviewBody,
    ThresholdsBody,
    ThresholdsRequest,
)
from billing.customer.customer_views import CustomerViews, InvoiceLink

logger = Logger(service="customer_api")
tracer = Tracer(service="customer_api")
app = APIGatewayRestResolver(enable_validation=True)

NOT_YOURS: Final = "this key is not for that account"
# The query parameters each route takes; any other is refused (400). `account_id` may be
# given on every route, and must then name the caller's own account (403 otherwise).
ROUTE_QUERIES: Final = {
    "/v1/accounts/{account_id}/usage": frozenset({"period"}),
    "/v1/accounts/{account_id}/usage/daily": frozenset({"period"}),
    "/v1/accounts/{account_id}/preview": frozenset({"period"}),
    "/v1/accounts/{account_id}/explanation": frozenset({"period"}),
}


@functools.cache
def service() -> CustomerViews:
    return wiring.customer_views()


AccountPath = Annotated[AccountId, Path(description="The caller's own account")]
NumberPath = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$"),
    Path(description="The invoice number, e.g. INV-2026-000042"),
]
CreditNoteNumberPath = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$"),
    Path(description="The credit note number, e.g. CN-2026-000001"),
]
AdjustmentNumberPath = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$"),
    Path(description="The adjustment invoice number, e.g. ADJ-2026-000001"),
]
PeriodQuery = Annotated[
    str | None,
    Query(
        max_length=16,
        description="YYYY-MM; by default the period holding now in the account's time zone",
    ),
]

_UNKNOWN = "An unknown account"
_BAD_ANSWER = "An answer that does not match its own model"
_PRICED = f"The account's plan is missing from the catalog, or: {_BAD_ANSWER}"


def _responses(description: str, **errors: str) -> dict[int, Any]:
    return {200: {"description": description}, **errors_of(**errors, caller=True)}


@app.get(
    "/v1/accounts/<account_id>",
    summary="The account: name, currency, time zone, plan in force, current period",
    responses=_responses("The account", not_found=_UNKNOWN, internal=_PRICED),
    tags=["account"],
)
@tracer.capture_method
def get_account(account_id: AccountPath) -> AccountBody:
    return AccountBody.model_validate(service().account(account_id))


@app.get(
    "/v1/accounts/<account_id>/usage",
    summary="Usage and running charges per meter, and the invoice they make now",
    responses=_responses("The usage report", not_found=_UNKNOWN, internal=_PRICED),
    tags=["usage"],
)
@tracer.capture_method
def get_usage(account_id: AccountPath, period: PeriodQuery = None) -> UsageReportBody:
    return UsageReportBody.model_validate(service().usage(account_id, period))


@app.get(
    "/v1/accounts/<account_id>/usage/daily",
    summary="Usage per meter and local day of the period, for a chart",
    responses=_responses("The period's days", not_found=_UNKNOWN, internal=_PRICED),
    tags=["usage"],
)
@tracer.capture_method
def get_daily_usage(account_id: AccountPath, period: PeriodQuery = None) -> DailyUsageBody:
    return DailyUsageBody.model_validate(service().daily(account_id, period).to_json())


@app.get(
    "/v1/accounts/<account_id>/preview",
    summary="The invoice preview: phases, lines, discounts, credits, amount due",
    responses=_responses("The preview", not_found=_UNKNOWN, internal=_PRICED),
    tags=["usage"],
)
@tracer.capture_method
def get_preview(account_id: AccountPath, period: PeriodQuery = None) -> PreviewBody:
    return PreviewBody.model_validate(service().preview(account_id, period))


@app.get(
    "/v1/accounts/<account_id>/explanation",
    summary="Each line of the period's invoice with the events it counts and its price steps",
    responses=_responses("The explanation", not_found=_UNKNOWN, internal=_PRICED),
    tags=["usage"],
)
@tracer.capture_method
def get_explanation(account_id: AccountPath, period: PeriodQuery = None) -> ExplanationBody:
    return ExplanationBody.model_validate(service().explanation(account_id, period))


@app.get(
    "/v1/accounts/<account_id>/credits",
    summary="Prepaid credit balances",
    responses=_responses("The account's grants", not_found=_UNKNOWN, internal=_PRICED),
    tags=["credits"],
)
@tracer.capture_method
def get_credits(account_id: AccountPath) -> CreditsBody:
    return CreditsBody.model_validate(service().credits(account_id))


@app.get(
    "/v1/accounts/<account_id>/invoices",
    summary="The account's invoices, oldest period first",
    responses=_responses("The account's invoice records", not_found=_UNKNOWN, internal=_BAD_ANSWER),
    tags=["invoices"],
)
@tracer.capture_method
def list_invoices(account_id: AccountPath) -> InvoiceListBody:
    return InvoiceListBody(account_id=account_id, invoices=service().invoices(account_id))


@app.get(
    "/v1/accounts/<account_id>/credit-notes",
    summary="The credit notes issued against the account's invoices",
    responses=_responses("The account's credit notes", not_found=_UNKNOWN, internal=_BAD_ANSWER),
    tags=["invoices"],
)
@tracer.capture_method
def list_credit_notes(account_id: AccountPath) -> CreditNoteListBody:
    notes = service().credit_notes(account_id)
    return CreditNoteListBody(account_id=account_id, credit_notes=notes)


@app.get(
    "/v1/accounts/<account_id>/invoices/<number>",
    summary="One invoice's document as stored, and a link to its PDF for 300 seconds",
    responses={
        200: {
            "description": "The invoice and its PDF's link",
            "content": {"application/json": {"model": InvoiceWithLinkBody}},
        },
        **errors_of(
            not_found=f"{_UNKNOWN}; no such invoice among the account's own; or one "
            "numbered but not stored yet",
            caller=True,
        ),
    },
    tags=["invoices"],
)
@tracer.capture_method
def get_invoice(account_id: AccountPath, number: NumberPath) -> Response[str]:
    return _with_link("invoice", service().invoice(account_id, number))


def _with_link(name: str, found: InvoiceLink) -> Response[str]:
    """The document under `name` as stored, byte for byte, and its PDF's link."""
    body = (
        "{"
        + json.dumps(name)
        + ":"
        + found.document.decode("utf-8").strip()
        + ',"pdf_url":'
        + json.dumps(found.pdf_url)
        + ',"pdf_url_expires_at":'
        + json.dumps(utc_text(found.expires_at))
        + "}"
    )
    return Response(HTTPStatus.OK, content_types.APPLICATION_JSON, body)


@app.get(
    "/v1/accounts/<account_id>/credit-notes/<number>",
    summary="One credit note's document as stored, and a link to its PDF for 300 seconds",
    responses={
        200: {
            "description": "The credit note and its PDF's link",
            "content": {"application/json": {"model": CreditNoteWithLinkBody}},
        },
        **errors_of(
            not_found=f"{_UNKNOWN}; no such credit note among the account's own; or one "
            "numbered but not stored yet",
            caller=True,
        ),
    },
    tags=["invoices"],
)
@tracer.capture_method
def get_credit_note(account_id: AccountPath, number: CreditNoteNumberPath) -> Response[str]:
    return _with_link("credit_note", service().credit_note(account_id, number))


@app.get(
    "/v1/accounts/<account_id>/adjustments",
    summary="The adjustment invoices issued on the account's invoices",
    responses=_responses(
        "The account's adjustment invoices", not_found=_UNKNOWN, internal=_BAD_ANSWER
    ),
    tags=["invoices"],
)
@tracer.capture_method
def list_adjustments(account_id: AccountPath) -> AdjustmentListBody:
    adjustments = service().adjustments(account_id)
    return AdjustmentListBody(account_id=account_id, adjustments=adjustments)


@app.get(
    "/v1/accounts/<account_id>/adjustments/<number>",
    summary="One adjustment invoice's document as stored, and a link to its PDF for 300 seconds",
    responses={
        200: {
            "description": "The adjustment invoice and its PDF's link",
            "content": {"application/json": {"model": AdjustmentWithLinkBody}},
        },
        **errors_of(
            not_found=f"{_UNKNOWN}; no such adjustment invoice among the account's own (a "
            "credit note's number included); or one numbered but not stored yet",
            caller=True,
        ),
    },
    tags=["invoices"],
)
@tracer.capture_method
def get_adjustment(account_id: AccountPath, number: AdjustmentNumberPath) -> Response[str]:
    return _with_link("adjustment", service().adjustment(account_id, number))


@app.get(
    "/v1/accounts/<account_id>/thresholds",
    summary="The customer's own spend thresholds",
    responses=_responses("The thresholds", not_found=_UNKNOWN, internal=_PRICED),
    tags=["thresholds"],
)
@tracer.capture_method
def get_thresholds(account_id: AccountPath) -> ThresholdsBody:
    return ThresholdsBody.model_validate(service().thresholds(account_id).to_json())


@app.put(
    "/v1/accounts/<account_id>/thresholds",
    summary="Replace the customer's own spend thresholds (at most 10)",
    responses=_responses("The thresholds as stored", not_found=_UNKNOWN, internal=_PRICED),
    tags=["thresholds"],
)
@tracer.capture_method
def put_thresholds(
    account_id: AccountPath, thresholds: Annotated[ThresholdsRequest, Body()]
) -> ThresholdsBody:
    view = service().set_thresholds(account_id, thresholds)
    return ThresholdsBody.model_validate(view.to_json())


ApiErrors(logger).register(app)


def caller_of(event: dict[str, Any]) -> dict[str, str]:
    """The authorizer's context: the caller's `account_id`, `key_id` and `kind`; 401 when
    it is missing (the API without its authorizer: never answered with data)."""
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    if not isinstance(context.get("account_id"), str) or not context["account_id"]:
        raise UnauthorizedError("no credential for this request")
    return context


def accounts_named(request: Request) -> list[object]:
    """Every account the request names: in the path, in the query (any number of times)
    and, for a write, at the top of its JSON body (decoded as Powertools decodes it for
    validation, base64 included)."""
    named: list[object] = []
    if "account_id" in request.path_parameters:
        named.append(request.path_parameters["account_id"])
    event = request.resolved_event
    named += (event.multi_value_query_string_parameters or {}).get("account_id") or []
    if request.method == "PUT" and event.body:
        try:
            body = event.json_body
        except ValueError:
            body = None  # refused by the body's validation, before this
        if isinstance(body, dict) and "account_id" in body:
            named.append(body["account_id"])
    return named


def only_own_account(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Every route's first check, before anything is read: the request names no account
    but the caller's (403 otherwise, the same answer whether that account exists or not),
    and no query parameter the route does not take (400)."""
    request = app.request
    event = request.resolved_event.raw_event
    caller = caller_of(event)
    named = accounts_named(request)
    if any(account != caller["account_id"] for account in named):
        logger.warning("another account asked for", extra=audit(event))
        raise ServiceError(HTTPStatus.FORBIDDEN, NOT_YOURS)
    taken = ROUTE_QUERIES.get(request.route, frozenset()) | {"account_id"}
    unknown = sorted(set(request.query_parameters or {}) - taken)
    if unknown:
        raise BadRequestError(f"{unknown[0]}: is not a parameter of this route")
    return next_middleware(app)


app.use(middlewares=[only_own_account])


def audit(event: dict[str, Any]) -> dict[str, Any]:
    """Who asks for what: one log line per request, ids only, never what the answer holds."""
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") or {}
    return {
        "caller_account": authorizer.get("account_id"),
        "key_id": authorizer.get("key_id"),
        "kind": authorizer.get("kind"),
        "method": event.get("httpMethod"),
        "path": event.get("path"),
    }


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info("customer data requested", extra=audit(event))
    return app.resolve(event, context)


# Every route is behind the customer API's authorizer: a key (or a portal link's
# credential) as a bearer token in the Authorization header.
BEARER: Final = "bearer"
_SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    BEARER: APIKey(
        name="Authorization",
        in_=APIKeyIn.header,
        description="`Bearer bk_<key id>_<secret>`: an account's API key (billing keys "
        "create) or a portal link's credential; checked by the API's authorizer",
    )
}


def openapi_document() -> str:
    """The API as OpenAPI 3.1 JSON, as docs/customer-openapi.json keeps it (Powertools' 422
    answers left out: validation errors are answered 400)."""
    return without_validation_answers(
        app.get_openapi_json_schema(
            title="Usage billing customer API",
            version="v1",
            description="An account's own usage, invoices, credits and spend thresholds, for "
            "its customer (docs/customer-api.md)",
            security_schemes=_SECURITY_SCHEMES,
            security=[{BEARER: []}],
        )
    )
