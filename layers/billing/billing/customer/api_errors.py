"""How the account APIs (functions/usage_api, functions/customer_api) answer what goes
wrong: every error is `{"statusCode": N, "message": "..."}` with a message a caller can act
on, never a stack trace, and each route's OpenAPI answers say which it may give.

- a request that cannot be right (a malformed period or number, a body that does not
  fit, a body sent as anything but JSON or nested too deeply to read): 400, naming the
  parameter (Powertools' own answer would be a 422 listing pydantic's error types, a 415,
  or for a multipart body without its boundary or a body thousands of brackets deep a
  function error);
- an unknown account or invoice: 404; DynamoDB or S3 unavailable after the SDK's retries:
  503; an account the catalog cannot price, or an answer that does not fit its own model:
  500, logged (ours to mend, not the caller's).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any, Final, NoReturn

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import (
    BadRequestError,
    InternalServerError,
    NotFoundError,
    ServiceError,
)
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import ValidationError

from billing.core.catalog import CatalogError
from billing.core.fields import readable
from billing.customer.account_views import BadRequest, NotFound
from billing.customer.api_models import ErrorBody
from billing.store.errors import StoreError


def _error(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ErrorBody}}}


def errors_of(
    *, not_found: str, internal: str | None = None, caller: bool = False
) -> dict[int, OpenAPIResponse]:
    """The error answers a route gives; `caller`: a route behind the customer API's
    authorizer, where API Gateway also answers 401, 403, 429 and 500 (its own answers,
    billing.customer.gateway_answers)."""
    errors = {
        400: _error("A parameter that cannot be right; the message names it and says why"),
        404: _error(f"{not_found}; or a path that is not a route ('Not found')"),
        503: _error("DynamoDB or S3 unavailable (after the SDK's retries); try again"),
    }
    internals = [f"{internal}; an operator is needed"] if internal else []
    if caller:
        errors[401] = _error("No credential, or one that is unknown, revoked or expired")
        errors[403] = _error(
            "An account (in the path, the query or the body) that is not the credential's"
        )
        errors[429] = _error("Too many requests for this key: slow down and retry")
        internals.append("The key could not be checked (the authorizer failed); try again")
    if internals:
        errors[500] = _error(". Or: ".join(internals))
    return dict(sorted(errors.items()))


JSON: Final = "application/json"
NOT_JSON: Final = "body: must be JSON, sent as 'Content-Type: application/json'"
TOO_DEEP: Final = "body: is nested too deeply to be read"


class ApiErrors:
    """The exception handlers of one API's resolver, logging through its logger."""

    def __init__(self, logger: Logger) -> None:
        self._logger = logger

    def register(self, app: APIGatewayRestResolver) -> None:
        self._app = app
        app.exception_handler(RequestValidationError)(self.invalid_request)
        app.exception_handler(RequestUnsupportedContentType)(self.not_json)
        app.exception_handler(ValueError)(self.unread_body)
        app.exception_handler(RecursionError)(self.too_deep)
        app.exception_handler(ValidationError)(self.invalid_answer)
        app.exception_handler([NotFound, BadRequest, StoreError, CatalogError])(self.as_http_error)

    def answer_refused(self, error_type: str) -> NoReturn:
        """An answer its own model refuses: ours to mend, not the caller's."""
        self._logger.error("answer does not match its model", extra={"error": error_type})
        raise InternalServerError("the answer could not be formed; an operator is needed")

    def invalid_request(self, error: RequestValidationError) -> Response[Any]:
        """A 400 naming the first parameter that is wrong, in words."""
        first = error.errors()[0]
        location, *names = first["loc"]
        if location == "response":  # how Powertools reports a returned value it cannot validate
            self.answer_refused(first["type"])
        if first["type"] == "json_invalid":  # located at the character it stopped at
            raise BadRequestError(f"{location}: is not JSON")
        if location == "body" and self._sent_as_other_than_json():  # a form Powertools read
            self.not_json(error)
        # A parameter given twice reaches validation as a list of its values.
        reason = "must be given once" if isinstance(first["input"], list) else readable(first)
        where = ".".join(str(name) for name in names) or str(location)
        raise BadRequestError(f"{where}: {reason}")

    def not_json(self, error: Exception) -> NoReturn:
        """A body in a media type these APIs do not take: Powertools reads form and
        multipart bodies too (whatever their errors, the body is not JSON), and answers any
        other type 415 in a shape of its own."""
        raise BadRequestError(NOT_JSON)

    def unread_body(self, error: ValueError) -> NoReturn:
        """Powertools' multipart parser raises a bare ValueError for a body it cannot split
        (no boundary), even an empty one: with a Content-Type other than JSON, the caller's
        to mend (400). Any other ValueError is a fault of ours, raised on as before (the
        function fails): without a body, only a multipart Content-Type is the parser's."""
        if self._sent_as_other_than_json() or self._names_multipart():
            self.not_json(error)
        raise error

    def too_deep(self, error: RecursionError) -> NoReturn:
        """A body nested deeper than Python's JSON parser goes (thousands of brackets; API
        Gateway passes up to 10 MB): no body these APIs take is, so the caller's to mend
        (400). Without a body, a fault of ours, raised on (the function fails)."""
        if self._app.current_event.body:
            raise BadRequestError(TOO_DEEP)
        raise error

    def _sent_as_other_than_json(self) -> bool:
        """Whether the request has a body and names a Content-Type, not JSON's (a body
        without one is read as JSON), as Powertools tells them apart."""
        return bool(self._app.current_event.body) and self._names_other_than_json()

    def _names_multipart(self) -> bool:
        content_type = (self._app.current_event.headers.get("content-type") or "").strip()
        return content_type.lower().startswith("multipart/")

    def _names_other_than_json(self) -> bool:
        content_type = (self._app.current_event.headers.get("content-type") or "").strip()
        return bool(content_type) and not content_type.startswith(JSON)

    def invalid_answer(self, error: ValidationError) -> Response[Any]:
        """A route's body that does not fit its model (the request was validated before the
        route ran, and its errors are RequestValidationError)."""
        self.answer_refused(error.errors()[0]["type"])

    def as_http_error(self, error: Exception) -> None:
        """The domain's exceptions as HTTP errors with a message a caller can act on."""
        if isinstance(error, NotFound):
            raise NotFoundError(str(error))
        if isinstance(error, BadRequest):
            raise BadRequestError(str(error))
        if isinstance(error, StoreError):
            self._logger.warning("store unavailable", extra={"error": type(error).__name__})
            raise ServiceError(
                HTTPStatus.SERVICE_UNAVAILABLE, "billing data is unavailable; try again"
            )
        self._logger.error(
            "catalog cannot price the account", extra={"error": type(error).__name__}
        )
        raise InternalServerError("the account's plan cannot be priced; an operator is needed")


def without_validation_answers(schema: str) -> str:
    """An API's OpenAPI document (Powertools' JSON) as the project keeps it: Powertools
    lists a 422 under every operation for its own validation errors, and the schemas of its
    422 bodies; these APIs answer those errors with a 400 (`invalid_request`), so they are
    left out."""
    document = json.loads(schema)
    for operations in document["paths"].values():
        for operation in operations.values():
            operation["responses"].pop("422", None)
    schemas = document["components"]["schemas"]
    for unused in ("HTTPValidationError", "ResponseValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
