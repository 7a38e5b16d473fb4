"""The workflows, as Amazon States Language files: the one definition that the CDK stack
deploys and the local runtime runs."""

from __future__ import annotations

import importlib.resources
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

INVOICE_RUN: Final = "invoice_run.asl.json"
# The task functions the invoice run's definition names, by substitution variable.
INVOICE_RUN_FUNCTIONS: Final = {
    "ListDueFunction": "list_due",
    "IssueInvoicesFunction": "issue_invoices",
    "SendInvoicesFunction": "send_invoices",
    "ReportRunFunction": "report_run",
}
# The bucket the Map's ResultWriter writes to (the run bucket), by substitution variable:
# ResultWriter takes no path, so the definition names it as it names the functions.
RUN_BUCKET_VARIABLE: Final = "RunBucket"
_VARIABLE = re.compile(r"\$\{(\w+)\}")


def definition_text(name: str = INVOICE_RUN) -> str:
    """The definition as written, ${...} variables and all."""
    return importlib.resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def variables(name: str = INVOICE_RUN) -> set[str]:
    return set(_VARIABLE.findall(definition_text(name)))


def substituted(values: Mapping[str, str], name: str = INVOICE_RUN) -> dict[str, Any]:
    """The definition with its variables replaced, as Step Functions' definition
    substitutions do; every variable must be given."""
    missing = variables(name) - set(values)
    if missing:
        raise KeyError(f"no value for {sorted(missing)}")
    text = _VARIABLE.sub(
        lambda match: values.get(match.group(1), match.group(0)), definition_text(name)
    )
    return dict(json.loads(text))


def execution_name(scheduled_at: datetime) -> str:
    """The invoice run's execution name for a scheduled time ('invoice-run-20261201T0100Z'):
    a schedule that fires twice for the same time starts one run."""
    return "invoice-run-" + scheduled_at.astimezone(UTC).strftime("%Y%m%dT%H%MZ")
