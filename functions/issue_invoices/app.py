"""issue_invoices: close, number, build, store and announce one batch's invoices."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from billing import wiring
from billing.invoicing import InvoiceRun

logger = Logger(service="issue_invoices")
tracer = Tracer(service="issue_invoices")


@functools.cache
def service() -> InvoiceRun:
    return wiring.invoice_run()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return service().issue(event)
