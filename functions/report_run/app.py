"""report_run: the invoice run's counts (issued, skipped, failed) from its batches."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from billing.invoicing.report import log_failures, report
from billing.invoicing.steps import ReportInput, read

logger = Logger(service="report_run")
metrics = Metrics(namespace="UsageBilling", service="invoice_run")


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    counts = report(read(ReportInput, event))
    log_failures(counts, logger)
    answer = counts.model_dump(mode="json")
    for name in ("issued", "skipped", "failed", "emailed", "undelivered"):
        metrics.add_metric(f"Invoices{name.capitalize()}", MetricUnit.Count, answer[name])
    # Emails our own SES account refused: alarmed on (stacks/monitoring.py).
    metrics.add_metric("InvoiceEmailsHeld", MetricUnit.Count, counts.held)
    logger.info("invoice run", extra={k: v for k, v in answer.items() if k != "failures"})
    return answer
