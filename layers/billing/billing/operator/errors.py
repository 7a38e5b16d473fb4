"""What the operator API refuses, each with the HTTP status it is answered with and a
message that names the field or header and says what to do."""

from __future__ import annotations

from http import HTTPStatus


class OperatorRefusal(Exception):
    status: HTTPStatus = HTTPStatus.BAD_REQUEST


class Invalid(OperatorRefusal):
    """A request that cannot be right: a body that does not validate, a bad header or
    page token (400)."""


class Unknown(OperatorRefusal):
    """No such account, or no catalog pushed yet (404)."""

    status = HTTPStatus.NOT_FOUND


class Conflict(OperatorRefusal):
    """The write meets what is stored: a version other than the one the caller read, an
    account that already exists (or does not yet), or a change the account's history
    refuses (409)."""

    status = HTTPStatus.CONFLICT


class PreconditionRequired(OperatorRefusal):
    """A write without If-Match (or If-None-Match: * to create): the API never writes
    blind over what another operator may have changed (428)."""

    status = HTTPStatus.PRECONDITION_REQUIRED
