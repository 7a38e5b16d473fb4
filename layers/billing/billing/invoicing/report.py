"""The invoice run's Report step: the run's counts from its batches' results, every
account it could not finish named with why, and those names logged."""

from __future__ import annotations

from typing import Final

from billing.invoicing.failures import masked
from billing.invoicing.ports import Log
from billing.invoicing.steps import (
    BatchFailed,
    ReportedFailure,
    ReportInput,
    ReportOutput,
    SendFailed,
    Undelivered,
)

# What the run says of the invoices a Send step that failed whole had been given.
MAYBE_NOT_EMAILED: Final = "maybe not emailed: the Send step failed (the next run emails it if not)"
# Something shaped like an email address: never logged (an error's text could hold one).


def report(request: ReportInput) -> ReportOutput:
    """The run's counts from its batches' results (a batch that failed whole counts all its
    accounts as failed; a batch whose emails failed whole counts its invoices as issued,
    not emailed). `issued` counts the invoices whose announcement this run recorded, so a
    run that finishes what an earlier one stored counts it (docs/invoicing.md, Counting)."""
    counts = {"issued": 0, "skipped": request.skipped, "failed": 0, "emailed": 0, "undelivered": 0}
    failures: list[ReportedFailure] = []
    undelivered: list[Undelivered] = []
    for result in request.results:
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
        counts["failed"] += len(failed)
        failures.extend(failed)
    # Emails our own sending account refused (SES paused, an identity or permission
    # missing): among the failures, and counted apart because they are ours to mend.
    held = sum(1 for failure in failures if failure.error == "SendingUnavailable")
    return ReportOutput(**counts, held=held, failures=failures, undelivered_invoices=undelivered)


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
