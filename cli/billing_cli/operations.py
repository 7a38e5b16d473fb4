"""What the operator commands do to a deployment, apart from how they print it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from billing.core.catalog import (
    Account,
    Accounts,
    Catalog,
    CatalogError,
    load_accounts,
    load_catalog,
    parse_accounts,
)
from billing.core.history import HistoryRewrite, check_push
from billing.core.invoice import utc_text
from billing.core.periods import Period
from billing.invoicing.delivery import PENDING_EMAIL_ERRORS
from billing.invoicing.due import DEFAULT_GRACE
from billing.operator.rules import PUSH_LEAD, catalog_orphans, orphans_message
from billing.settings import STACK_OUTPUTS
from billing.store.clock_parameter import ClockParameter
from billing.store.errors import StoreError
from billing.store.invocations import FunctionFailed
from billing.store.invoice_store import InvoiceRecord
from billing.store.workflows import ExecutionExists
from billing_cli.deployment import Deployment
from billing_cli.outcomes import Outcomes
from billing_cli.sending import Waiting, outcome_json, put_tagged

# The local runtime's test clock (`billing local --clock`): the stack output naming the SSM
# parameter that holds it. Deployed stacks have none.
TEST_CLOCK_OUTPUT = "TestClockParameter"


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
    outcomes: Outcomes | None = None  # with --wait: what the service did with them

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "sent": self.sent,
            "refused": self.refused,
            "not_sent": self.not_sent,
            "put_records_calls": self.calls,
            "resent": self.resent,
            **({"error": self.error} if self.error else {}),
            **outcome_json(self.outcomes),
        }


def send_records(
    deployment: Deployment, records: Sequence[bytes], waiting: Waiting | None = None
) -> SendResult:
    """Put each record on the usage stream; a record that fails validation is refused with
    its line and reason and the rest still go. Nothing is silently dropped: what could not
    be sent is counted, and sending the file again is safe (event ids dedupe). Given
    `waiting`, what the service did with each record sent (billing_cli.outcomes)."""
    sent = put_tagged(deployment, list(enumerate(records, start=1)), waiting=waiting)
    return SendResult(
        records=len(records),
        sent=len(sent.placed),
        calls=sent.calls,
        resent=sent.resent,
        refused=[
            {"line": line, "reason": reason, "message": message}
            for line, reason, message in sent.refused
        ],
        not_sent=sent.not_sent,
        error=sent.error,
        outcomes=sent.outcomes,
    )


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
    if orphans := catalog_orphans(catalog, stored):
        raise CatalogError(orphans_message(orphans), source=str(path))
    _store(lambda: config.put_catalog(catalog), "store the catalog")
    return catalog


def push_accounts(deployment: Deployment, path: Path) -> Accounts:
    """Validate the accounts file against the stored catalog and store every account."""
    catalog = stored_catalog(deployment)
    return store_accounts(deployment, load_accounts(path, catalog), path.name)


def amend_account(
    deployment: Deployment,
    account_id: str,
    field: str,
    entry_for: Callable[[Account], dict[str, Any]],
    source: str,
) -> Account:
    """Add one entry to a list of a stored account (`changes`, `discounts`, `credits`),
    after those it has: `entry_for(account)` makes it from the account as stored. Validated
    and checked as a pushed accounts file is (messages name `source`); the account as
    stored."""
    catalog = stored_catalog(deployment)
    try:
        account = deployment.config().accounts([account_id]).get(account_id)
    except StoreError as error:
        raise OperationError(f"cannot read the stored account: {error}") from None
    if account is None:
        raise OperationError(f"account {account_id!r} is not stored")
    document = account.model_dump(mode="json", by_alias=True)
    document[field] = [*document.get(field, []), entry_for(account)]
    accounts = parse_accounts({"accounts": [document]}, catalog, source)
    store_accounts(deployment, accounts, source)
    return accounts.accounts[0]


def stored_catalog(deployment: Deployment) -> Catalog:
    """The deployment's catalog, or OperationError saying to push one first."""
    try:
        return deployment.config().catalog()
    except CatalogError as error:
        raise OperationError(
            f"{error}: push the catalog first (billing catalog push FILE)"
        ) from None
    except StoreError as error:
        raise OperationError(f"cannot read the stored catalog: {error}") from None


def store_accounts(deployment: Deployment, accounts: Accounts, source: str) -> Accounts:
    """Store validated accounts unless they rewrite history (named after `source`)."""
    config = deployment.config()
    try:
        already = config.all_accounts()
        # The deployment's clock: a local test clock when it has one (billing local --clock).
        now = run_clock(deployment)
        stored = Accounts(accounts=already) if already else None
        check_push(stored, accounts, now, lead=PUSH_LEAD)
    except StoreError as error:
        raise OperationError(f"cannot read the stored accounts: {error}") from None
    except HistoryRewrite as error:
        raise OperationError(f"{source}: {error}; nothing was stored") from None
    # The hints first: one written for a profile not stored yet is only early (harmless);
    # a profile stored without its hint would never be found by an hourly invoice run.
    index = deployment.due_index()
    _store(lambda: index.pushed(already, accounts.accounts, now), "index the accounts")
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
        state = "email pending" if failure.get("error") in PENDING_EMAIL_ERRORS else "failed"
        lines.append(f"{where or 'a batch'}: {state}: {why}")
    for item in report.get("undelivered_invoices", []):
        number = item.get("invoice_number", "")
        lines.append(
            f"{item.get('account_id')} {item.get('period')}: undelivered: "
            f"{number + ' ' if number else ''}{item.get('reason', '')}".rstrip()
        )
    if report.get("truncated"):
        # more than a state holds: the run stored them all beside its results
        named = len(report.get("failures", [])) + len(report.get("undelivered_invoices", []))
        whole = report.get("report") or {}
        total = sum(report.get(count, 0) for count in ("failed", "pending", "undelivered"))
        left = total - named
        lines.append(
            f"and {left} more: every one is in s3://{whole.get('bucket')}/{whole.get('key')}"
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
    one was asked for (scheduled runs are named by `billing.invoicing.workflow.execution_name`)."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"invoice-run-{period}-{stamp}" if period else f"invoice-run-manual-{stamp}"


def run_clock(deployment: Deployment) -> datetime:
    """The clock an invoice run started by hand takes: the deployment's test clock when it
    has one (`billing local --clock`), else now."""
    if TEST_CLOCK_OUTPUT in deployment.outputs:
        return read_test_clock(deployment)
    return utc_now()


@dataclass(frozen=True)
class NotDue:
    """No account's `period` is due at `now`: when the first one and the last one will be."""

    period: Period
    first: datetime
    last: datetime
    now: datetime

    def __str__(self) -> str:
        return (
            f"{self.period} is not due yet at {utc_text(self.now)}: its first accounts "
            f"are due at {utc_text(self.first)}, all of them from {utc_text(self.last)} (the "
            "period's end in each account's time zone plus the grace time)"
        )


def not_due(
    deployment: Deployment, period: Period, now: datetime, grace: timedelta = DEFAULT_GRACE
) -> NotDue | None:
    """When no account of the deployment has `period` due at `now`, when they will; None when
    some have (the run invoices those, and a later run the others)."""
    try:
        accounts = deployment.config().all_accounts()
    except StoreError as error:
        raise OperationError(f"cannot read the stored accounts: {error}") from None
    due_at = sorted(due_times(accounts, period, grace).values())
    if not due_at or due_at[0] <= now:
        return None
    return NotDue(period, due_at[0], due_at[-1], now)


def due_times(
    accounts: Sequence[Account], period: Period, grace: timedelta = DEFAULT_GRACE
) -> dict[str, datetime]:
    """When `period` is due for each account whose subscription overlaps it (UTC): the
    period's end in the account's zone plus the grace time."""
    return {
        account.id: period.end(account.zone).astimezone(UTC) + grace
        for account in accounts
        if account.overlaps(period)
    }


def not_due_yet(
    accounts: Sequence[Account], period: Period, now: datetime
) -> list[tuple[str, datetime]]:
    """The accounts whose `period` is not due at `now` (an invoice run leaves them out),
    each with when it will be, first due first."""
    later = [(at, account_id) for account_id, at in due_times(accounts, period).items() if at > now]
    return [(account_id, at) for at, account_id in sorted(later)]


def start_invoice_run(
    deployment: Deployment, period: Period | None, now: datetime | None = None
) -> InvoiceRunStarted:
    now = now or utc_now()
    run_input: dict[str, Any] = {"now": utc_text(now)}
    if period is not None:
        run_input["period"] = str(period)
    name = run_name(now, period)
    try:
        execution_arn = deployment.invoice_workflow().begin(name, run_input)
    except ExecutionExists:
        raise OperationError(f"invoice run {name} was already started this second") from None
    except StoreError as error:
        raise OperationError(f"cannot start the invoice run: {error}") from None
    return InvoiceRunStarted(name, execution_arn, run_input)


def wait_for(
    deployment: Deployment, run: InvoiceRunStarted, poll_seconds: float = 1.0
) -> InvoiceRunStarted:
    """Wait for the run to end; its status and report (the workflow's counts)."""
    workflow = deployment.invoice_workflow()
    try:
        execution = workflow.execution(run.execution_arn)
        while execution.running:
            time.sleep(poll_seconds)
            execution = workflow.execution(run.execution_arn)
    except StoreError as error:
        raise OperationError(f"cannot follow invoice run {run.name}: {error}") from None
    run.status = execution.status
    if run.status == "SUCCEEDED":
        run.report = execution.output or {}
    else:
        run.error = f"{execution.error or run.status}: {execution.cause or ''}"
    return run


def reindex(deployment: Deployment, now: datetime) -> tuple[int, int]:
    """Give every stored account the due hint an hourly invoice run finds it by, from its
    ledger and invoices (once, after upgrading a deployment made before the index);
    (accounts looked at, hints written). Safe to run again: it only adds or lowers hints."""
    try:
        return deployment.due_index().reindex(deployment.config(), deployment.ledgers(), now)
    except StoreError as error:
        raise OperationError(f"cannot rebuild the due index: {error}") from None


# --- billing invoices list / show / resend ------------------------------------------------


def invoice_state(record: InvoiceRecord) -> str:
    """One word for where an invoice is: `numbered` (not stored yet), `stored` (not emailed
    yet), or its email's state (sending, sent, undelivered, unknown, bounced, complained)."""
    if not record.stored:
        return "numbered"
    return record.email_status or "stored"


def invoice_row(record: InvoiceRecord) -> dict[str, Any]:
    return {
        "invoice_number": record.invoice_number,
        "account_id": record.account_id,
        "period": record.period,
        "issued_at": record.issued_at,
        "status": invoice_state(record),
        "currency": record.currency,
        "total": record.total,
        **({"reason": record.email_reason} if record.email_reason else {}),
    }


def list_invoices(
    deployment: Deployment,
    account: str | None = None,
    period: Period | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """The deployment's invoices, by number, filtered by account, period and status."""
    store = deployment.invoices()
    try:
        records = store.for_account(account) if account else store.all_records()
    except StoreError as error:
        raise OperationError(f"cannot read the invoices: {error}") from None
    rows = [
        invoice_row(record)
        for record in sorted(records, key=lambda record: record.sequence)
        if (period is None or record.period == str(period))
    ]
    return [row for row in rows if status is None or row["status"] == status]


def find_invoice(deployment: Deployment, number: str) -> InvoiceRecord:
    """The record of the invoice numbered `number` (a scan: operators' use only)."""
    try:
        records = deployment.invoices().all_records()
    except StoreError as error:
        raise OperationError(f"cannot read the invoices: {error}") from None
    for record in records:
        if record.invoice_number == number:
            return record
    raise OperationError(f"no invoice {number} in {deployment.stack}")


def invoice_documents(
    deployment: Deployment, record: InvoiceRecord
) -> tuple[dict[str, Any], bytes]:
    """The invoice's stored JSON document and PDF, as they were stored."""
    if not record.stored or record.json_key is None or record.pdf_key is None:
        raise OperationError(
            f"{record.invoice_number} is numbered but not stored yet: the next invoice run "
            "stores it"
        )
    documents = deployment.documents()
    try:
        return json.loads(documents.get(record.json_key)), documents.get(record.pdf_key)
    except StoreError as error:
        raise OperationError(f"cannot read {record.invoice_number}'s documents: {error}") from None


def resend_invoice(deployment: Deployment, number: str) -> dict[str, Any]:
    """Ask the deployment's Send function to email the stored invoice again (it holds the
    SES grant and the sender settings); what became of the email."""
    record = find_invoice(deployment, number)
    request = {"resend": {"account_id": record.account_id, "period": record.period}}
    return dict(_ask_send_function(deployment, request, f"{number} was not resent", "resend"))


def void_invoice(deployment: Deployment, number: str, reason: str) -> dict[str, Any]:
    """Ask the deployment's Send function to issue the credit note that voids the invoice
    numbered `number` (it holds the grants and the sender's settings a credit note is
    stored and emailed with); the credit note, where it is stored and its email. Voiding
    again returns the same credit note, finishing whatever an earlier attempt left."""
    if not reason.strip():
        raise OperationError("a credit note needs a reason: --reason TEXT")
    record = find_invoice(deployment, number)
    request = {"void": {"account_id": record.account_id, "period": record.period, "reason": reason}}
    note = _ask_send_function(deployment, request, f"{number} was not voided", "credit note")
    return {**note, "bucket": deployment.output(STACK_OUTPUTS.invoice_bucket)}


def correct_invoice(
    deployment: Deployment,
    account_id: str,
    period: str,
    reason: str,
    corrected: dict[str, Any],
    after: Sequence[str] = (),
) -> dict[str, Any]:
    """Ask the deployment's Send function to take the invoice of (account, period) from
    where it stood after the documents `after` to `corrected` (the invoice its re-rated
    usage makes): its credit note and adjustment invoice, as `void_invoice` returns a
    credit note; the same documents again for the same correction."""
    if not reason.strip():
        raise OperationError("a correction of an invoiced period needs a reason: --reason TEXT")
    request = {
        "correct": {
            "account_id": account_id,
            "period": period,
            "reason": reason,
            "corrected": corrected,
            "after": list(after),
        }
    }
    refused = f"the invoice of {account_id} for {period} was not corrected"
    return _ask_send_function(deployment, request, refused, "credit note")  # type: ignore[no-any-return]


def _ask_send_function(
    deployment: Deployment, request: dict[str, Any], refused: str, what: str
) -> Any:
    """The Send function's answer to an operator's request; OperationError saying why it
    refused (`refused: <its message>`) or could not be asked (for the `what`)."""
    try:
        return deployment.send_invoices_function().call(request)
    except FunctionFailed as failed:
        raise OperationError(f"{refused}: {failed.message or 'the function failed'}") from None
    except StoreError as error:
        raise OperationError(f"cannot ask for the {what}: {error}") from None


# --- the local runtime's test clock --------------------------------------------------------


def read_test_clock(deployment: Deployment) -> datetime:
    try:
        return _test_clock(deployment).now()
    except StoreError as error:
        raise OperationError(f"cannot read the test clock: {error}") from None


def local_test_clock(deployment: Deployment) -> Callable[[], datetime] | None:
    """The deployment's test clock as a clock, if it has one (a local runtime's)."""
    if TEST_CLOCK_OUTPUT not in deployment.outputs:
        return None
    return lambda: read_test_clock(deployment)


def set_test_clock(deployment: Deployment, now: datetime) -> datetime:
    """Move the test clock to `now` (never back: what was rated or invoiced stays in the
    past); the clock's new time."""
    if now < read_test_clock(deployment):
        raise OperationError("the test clock only moves forward")
    try:
        _test_clock(deployment).set(now)
    except StoreError as error:
        raise OperationError(f"cannot move the test clock: {error}") from None
    return now


def _test_clock(deployment: Deployment) -> ClockParameter:
    name = deployment.outputs.get(TEST_CLOCK_OUTPUT)
    if not name:
        raise OperationError(
            f"{deployment.stack} has no test clock: only a local runtime started with "
            "`billing local --clock T` has one"
        )
    return ClockParameter(deployment.client("ssm"), name)
