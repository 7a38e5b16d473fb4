"""report_run: the invoice run's counts (issued, skipped, failed) from its batches' results."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from billing.wiring import run_report

logger = Logger(service="report_run")
metrics = Metrics(namespace="UsageBilling", service="invoice_run")
service = functools.cache(functools.partial(run_report, logger=logger))


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    answer = service().handle(event)
    for name in ("issued", "skipped", "failed", "emailed", "undelivered", "pending"):
        metrics.add_metric(f"Invoices{name.capitalize()}", MetricUnit.Count, answer[name])
    # Emails our own SES account refused: alarmed on (stacks/monitoring.py).
    metrics.add_metric("InvoiceEmailsHeld", MetricUnit.Count, answer["held"])
    logger.info(
        "invoice run",
        extra={k: v for k, v in answer.items() if k not in ("failures", "undelivered_invoices")},
    )
    return answer


handler.service = service  # type: ignore[attr-defined]  # tests and the local runtime reset it
