"""The invoice run's Report step: the run's counts from its batches' results (read from the
run's folder in S3), every account it could not finish named with why, those names logged,
and the whole report written beside the results.

The step's output holds the counts and as many names as fit a budget far under the 256 KB
a state may hold; when some are left out it says `truncated` and names the report's object,
which has them all."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from billing.invoicing.delivery import PENDING_EMAIL_ERRORS
from billing.invoicing.failures import masked
from billing.invoicing.ports import Log
from billing.invoicing.steps import (
    BatchFailed,
    BatchResult,
    FileRef,
    ManifestBatch,
    ReportedFailure,
    ReportInput,
    ReportOutput,
    SendFailed,
    Undelivered,
    read,
)
from billing.store.run_files import RunFiles

# What the run says of the invoices a Send step that failed whole had been given.
MAYBE_NOT_EMAILED: Final = "maybe not emailed: the Send step failed (the next run emails it if not)"
# Something shaped like an email address: never logged (an error's text could hold one).


# What the step's output may spend on names (the rest are in the report's object).
NAMES_BUDGET: Final = 64 * 1024
# A batch the Map ran and that left no result: its child execution failed in a way its own
# Catch could not take (RecordBatch out of retries, the child stopped or timed out).
NO_RESULT: Final = "BatchResultMissing"
# A result file that is not a batch's result (written by something else than RecordBatch):
# its batch is named failed from the manifest as if it had none.
UNREADABLE_RESULT: Final = "BatchResultUnreadable"
_RESULT: Final[TypeAdapter[BatchResult]] = TypeAdapter(BatchResult)


@dataclass
class ReportRun:
    """The Report step's service: the batches' results from the run's folder."""

    files: RunFiles
    log: Log

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """The task's event as ReportInput, its outcome as JSON."""
        return self.run(read(ReportInput, event)).model_dump(mode="json")

    def run(self, request: ReportInput) -> ReportOutput:
        """The run's report from its folder's results, written whole beside them; returned
        with as many names as fit a state."""
        stored = self.files.results(request.folder.prefix)
        found: list[BatchResult] = []
        unread: dict[int, str] = {}  # batch index -> why it has no result to count
        for index in range(request.batches):
            if index not in stored:
                unread[index] = NO_RESULT
                continue
            try:
                found.append(_RESULT.validate_python(stored[index]))
            except ValidationError:
                unread[index] = UNREADABLE_RESULT
        if unread:
            manifest = self.files.manifest(request.manifest.key)
            found += [
                BatchFailed(items=ManifestBatch.model_validate(manifest[i]).items, error=why)
                for i, why in unread.items()
            ]
        counts = without_addresses(report(found, skipped=request.skipped))
        log_failures(counts, self.log)
        key = self.files.put_report(request.folder.prefix, counts.model_dump(mode="json"))
        return bounded(counts, FileRef(bucket=self.files.bucket, key=key))


def without_addresses(counts: ReportOutput) -> ReportOutput:
    """`counts` with anything shaped like an email address in a reason masked: the report
    is kept in S3 and in the execution's history (90 days, readable by whoever may read
    the run), where a customer's address has no business (an SES refusal can name it).
    The account and the invoice number say whose it is."""
    return counts.model_copy(
        update={
            "failures": [
                f.model_copy(update={"reason": masked(f.reason)}) if f.reason else f
                for f in counts.failures
            ],
            "undelivered_invoices": [
                u.model_copy(update={"reason": masked(u.reason)})
                for u in counts.undelivered_invoices
            ],
        }
    )


def bounded(counts: ReportOutput, whole: FileRef) -> ReportOutput:
    """`counts` with as many names as fit NAMES_BUDGET, `truncated` when some do not, and
    where the whole report is."""
    budget = NAMES_BUDGET
    kept: dict[str, list[Any]] = {"failures": [], "undelivered_invoices": []}
    for name, fitting in kept.items():
        for entry in getattr(counts, name):
            budget -= len(json.dumps(entry.model_dump(mode="json")))
            if budget < 0:
                break
            fitting.append(entry)
    truncated = budget < 0
    return counts.model_copy(update={**kept, "truncated": truncated, "report": whole})


def report(results: Iterable[BatchResult], *, skipped: int = 0) -> ReportOutput:
    """The run's counts from its batches' results (a batch that failed whole counts all its
    accounts as failed; a batch whose emails failed whole counts its invoices as issued,
    not emailed); `skipped` is ListDue's count of pairs done before this run. `issued`
    counts the invoices whose announcement this run recorded, so a run that finishes what
    an earlier one stored counts it (docs/invoicing.md, Counting)."""
    counts = dict.fromkeys(("issued", "failed", "emailed", "undelivered", "pending"), 0)
    counts["skipped"] = skipped
    failures: list[ReportedFailure] = []
    undelivered: list[Undelivered] = []
    for result in results:
        if isinstance(result, BatchFailed):
            counts["failed"] += len(result.items)
            failures.extend(
                ReportedFailure(account_id=item.account_id, period=item.period, error=result.error)
                for item in result.items
            )
            continue
        counts["issued"] += result.issued
        counts["skipped"] += result.skipped
        counts["emailed"] += result.emailed
        counts["undelivered"] += len(result.undelivered)
        undelivered.extend(result.undelivered)
        failed = [
            ReportedFailure(**failure.model_dump())
            for failure in (*result.failed, *result.send_failed)
        ]
        if isinstance(result, SendFailed):
            failed.extend(_left_to_send(result, failed))
        # An email certainly not sent and left for later (throttled, out of time, SES
        # paused): named, and counted as pending, not failed; the next run sends it.
        pending = sum(1 for failure in result.send_failed if failure.error in PENDING_EMAIL_ERRORS)
        counts["pending"] += pending
        counts["failed"] += len(failed) - pending
        failures.extend(failed)
    # Emails our own sending account refused (SES paused, an identity or permission
    # missing): among the failures, and counted apart because they are ours to mend.
    held = sum(1 for failure in failures if failure.error == "SendingUnavailable")
    return ReportOutput(
        issued=counts["issued"],
        skipped=counts["skipped"],
        failed=counts["failed"],
        emailed=counts["emailed"],
        undelivered=counts["undelivered"],
        pending=counts["pending"],
        held=held,
        failures=failures,
        undelivered_invoices=undelivered,
    )


def _left_to_send(result: SendFailed, failed: list[ReportedFailure]) -> list[ReportedFailure]:
    """The batch's invoices are issued; those Issue left to Send may not be emailed by this
    run (the next run emails any that is still not), each named once: one already among
    the batch's failures is not named again."""
    named = {(failure.account_id, failure.period) for failure in failed if failure.account_id}
    pending = [*result.unsent, *result.unsent_skipped]
    left = [
        ReportedFailure(**item.model_dump(), error=result.send_error, reason=MAYBE_NOT_EMAILED)
        for item in pending
        if (item.account_id, item.period) not in named
    ]
    if not pending:
        left.append(ReportedFailure(error=result.send_error, reason="the Send step failed"))
    return left


def log_failures(counts: ReportOutput, log: Log) -> None:
    """A warning per invoice the run could not finish, and per email refused for its
    address: account, period, invoice number, error and reason, with anything shaped like
    an email address masked (no personal data in logs)."""
    for failure in counts.failures:
        log.warning("invoice run: not finished", extra=_masked(failure.model_dump()))
    for item in counts.undelivered_invoices:
        log.warning("invoice run: email undelivered", extra=_masked(item.model_dump()))


def _masked(fields: dict[str, str]) -> dict[str, str]:
    return {name: masked(value) for name, value in fields.items()}
