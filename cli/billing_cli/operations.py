"""What the operator commands do to a deployment, apart from how they print it."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from billing.catalog import Accounts, Catalog, CatalogError, load_accounts, load_catalog
from billing.invoice import utc_text
from billing.periods import Period
from billing.producer import InvalidUsageEvent, UsageNotSent, UsageProducer
from billing.resources import STACK_OUTPUTS
from billing.store.errors import StoreError
from billing_cli.deployment import Deployment


def utc_now() -> datetime:
    return datetime.now(UTC)


class OperationError(Exception):
    """The operation was refused or failed; the message says why and what to do."""


# --- billing send -----------------------------------------------------------------------


@dataclass
class SendResult:
    records: int
    sent: int = 0
    calls: int = 0
    resent: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)  # line, reason, message
    not_sent: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "sent": self.sent,
            "refused": self.refused,
            "not_sent": self.not_sent,
            "put_records_calls": self.calls,
            "resent": self.resent,
            **({"error": self.error} if self.error else {}),
        }


def send_records(deployment: Deployment, records: Sequence[bytes]) -> SendResult:
    """Put each record on the usage stream; a record that fails validation is refused with
    its line and reason and the rest still go. Nothing is silently dropped: what could not
    be sent is counted, and sending the file again is safe (event ids dedupe)."""
    producer = UsageProducer(
        deployment.output(STACK_OUTPUTS.usage_stream_name), client=deployment.client("kinesis")
    )
    result = SendResult(records=len(records))
    try:
        for line, data in enumerate(records, start=1):
            try:
                producer.put(data)
            except InvalidUsageEvent as invalid:
                rejection = invalid.rejection
                result.refused.append(
                    {"line": line, "reason": str(rejection.reason), "message": rejection.message}
                )
        producer.flush()
    except UsageNotSent as failure:
        result.error = str(failure)
    except ClientError as error:
        result.error = f"the stream refused the records: {error.response['Error'].get('Code')}"
    result.sent = producer.report.sent
    result.calls = producer.report.calls
    result.resent = producer.report.resent
    result.not_sent = result.records - len(result.refused) - result.sent
    return result


# --- billing catalog push / accounts push ------------------------------------------------


def push_catalog(deployment: Deployment, path: Path) -> Catalog:
    """Validate the catalog file and store it, unless a stored account's plan is missing
    from it (the accounts would no longer validate)."""
    catalog = load_catalog(path)
    config = deployment.config()
    try:
        stored = config.all_accounts()
    except StoreError as error:
        raise OperationError(f"cannot read the stored accounts: {error}") from None
    orphans = sorted(
        f"{account.id} ({account.plan})"
        for account in stored
        if account.plan not in catalog.plans_by_id
    )
    if orphans:
        raise CatalogError(
            f"stored accounts use plans this catalog no longer has: {', '.join(orphans)}",
            source=str(path),
        )
    _store(lambda: config.put_catalog(catalog), "store the catalog")
    return catalog


def push_accounts(deployment: Deployment, path: Path) -> Accounts:
    """Validate the accounts file against the stored catalog and store every account."""
    config = deployment.config()
    try:
        catalog = config.catalog()
    except CatalogError as error:
        raise OperationError(
            f"{error}: push the catalog first (billing catalog push FILE)"
        ) from None
    except StoreError as error:
        raise OperationError(f"cannot read the stored catalog: {error}") from None
    accounts = load_accounts(path, catalog)
    _store(lambda: config.put_accounts(accounts), "store the accounts")
    return accounts


def _store(write: Any, what: str) -> None:
    try:
        write()
    except StoreError as error:
        raise OperationError(f"cannot {what}: {error}") from None


# --- billing invoices run -----------------------------------------------------------------


def needing_attention(report: dict[str, Any]) -> list[str]:
    """One line per account the invoice run could not finish (failed, or its email refused
    or not known to have left), naming the account, the period and why; none when the run
    issued and delivered everything it was given."""
    lines = []
    for failure in report.get("failures", []):
        where = " ".join(str(failure[key]) for key in ("account_id", "period") if failure.get(key))
        why = ": ".join(str(failure[key]) for key in ("error", "reason") if failure.get(key))
        lines.append(f"{where or 'a batch'}: failed: {why}")
    for item in report.get("undelivered_invoices", []):
        number = item.get("invoice_number", "")
        lines.append(
            f"{item.get('account_id')} {item.get('period')}: undelivered: "
            f"{number + ' ' if number else ''}{item.get('reason', '')}".rstrip()
        )
    return lines


@dataclass
class InvoiceRunStarted:
    name: str
    execution_arn: str
    run_input: dict[str, Any]
    status: str = "RUNNING"
    report: dict[str, Any] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": self.name,
            "execution_arn": self.execution_arn,
            "input": self.run_input,
            "status": self.status,
        }
        if self.report is not None:
            document["report"] = self.report
        if self.error is not None:
            document["error"] = self.error
        return document


def run_name(now: datetime, period: Period | None) -> str:
    """A started-by-hand run's execution name: the time to the second, and the period if
    one was asked for (scheduled runs are named by `billing.invoicing.execution_name`)."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"invoice-run-{period}-{stamp}" if period else f"invoice-run-manual-{stamp}"


def start_invoice_run(
    deployment: Deployment, period: Period | None, now: datetime | None = None
) -> InvoiceRunStarted:
    now = now or utc_now()
    run_input: dict[str, Any] = {"now": utc_text(now)}
    if period is not None:
        run_input["period"] = str(period)
    name = run_name(now, period)
    sfn = deployment.client("stepfunctions")
    try:
        started = sfn.start_execution(
            stateMachineArn=deployment.output(STACK_OUTPUTS.invoice_state_machine),
            name=name,
            input=json.dumps(run_input),
        )
    except ClientError as error:
        code = error.response["Error"].get("Code")
        if code == "ExecutionAlreadyExists":
            raise OperationError(f"invoice run {name} was already started this second") from None
        raise OperationError(f"cannot start the invoice run: {code}") from None
    return InvoiceRunStarted(name, started["executionArn"], run_input)


def wait_for(
    deployment: Deployment, run: InvoiceRunStarted, poll_seconds: float = 1.0
) -> InvoiceRunStarted:
    """Wait for the run to end; its status and report (the workflow's counts)."""
    sfn = deployment.client("stepfunctions")
    while True:
        described = sfn.describe_execution(executionArn=run.execution_arn)
        if described["status"] != "RUNNING":
            break
        time.sleep(poll_seconds)
    run.status = described["status"]
    if run.status == "SUCCEEDED":
        run.report = json.loads(described.get("output") or "{}")
    else:
        run.error = f"{described.get('error') or run.status}: {described.get('cause') or ''}"
    return run
