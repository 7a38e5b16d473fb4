"""start_invoice_run: the schedule's target. It starts the invoice workflow under a name
derived from the scheduled time, so a schedule that fires twice starts one run; and starts
none while a run is still going (a month-end run emails at SES's pace for hours: an hourly
run beside it would work the same invoices and share the send rate). What it leaves is due
still, and the first hour with no run going starts it."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from billing.core.events import parse_timestamp
from billing.core.invoice import utc_text
from billing.invoicing.workflow import execution_name
from billing.store.workflows import WorkflowStarter
from billing.wiring import workflow_starter

logger = Logger(service="start_invoice_run")


@functools.cache
def starter() -> WorkflowStarter:
    return workflow_starter()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """`event` is the schedule's input: {"scheduled_time": "<aws.scheduler.scheduled-time>"}."""
    scheduled = parse_timestamp(event["scheduled_time"]).at
    name = execution_name(scheduled)
    going = starter().running()
    if going is not None:
        logger.info("invoice run not started: one is going", extra={"execution": name})
        return {"execution": name, "started": False, "running": going.rsplit(":", 1)[-1]}
    started = starter().start(name, {"now": utc_text(scheduled)})
    logger.info("invoice run", extra={"execution": name, "started": started})
    return {"execution": name, "started": started}
