"""The invoice run at scale: how many accounts one run can take within Step Functions' and
Lambda's limits, and how long a month-end run takes on AWS. A model written out here and in
docs/performance.md, fed with rates measured on this machine.

Every state's payload is the same size whatever the number of accounts (the Distributed Map
reads its batches from S3; tests/unit/test_invoice_run_paths.py and test_run_files.py), and
the parent execution's history is ~20 events whatever the number of batches: what bounds a
run is the time its two whole-run steps take, ListDue writing the manifest and Report
reading one result per batch, each within Lambda's 15 minutes.
"""

from __future__ import annotations

import json
import math
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

# The stores in memory are the tests' own (tests/support/due_memory.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import workloads
from billing.core.owed import DueHint, due_shards
from billing.core.periods import Period
from billing.invoicing.due import BATCH_SIZE, ListDue, _Counted
from billing.invoicing.report import ReportRun
from billing.invoicing.steps import DueInput, Item
from billing.store.due_hints import StoredHint
from billing.store.run_files import PART_SIZE, RunFiles, result_key
from tests.support.due_memory import MemoryConfig, MemoryHints, MemoryInvoices
from tests.support.s3_memory import FakeS3

LAMBDA_TIMEOUT_S: Final = 900
HINT_BYTES: Final = 75  # a due hint's item (docs/invoicing.md, Finding what is due)
# Lambda's CPU grows with memory: a full vCPU at 1,769 MB; list_due and report_run have
# 1,024 MB (stacks/settings.py).
LAMBDA_CPU_SHARE: Final = 1024 / 1769
# One DynamoDB batch call (BatchGetItem of 100 keys, a Query page) from Lambda. ListDue
# reads per due account its profile and its records, 100 a call each.
DYNAMODB_BATCH_MS: Final = 10.0
LIST_DUE_CALLS_PER_ACCOUNT: Final = 2 / 100
# One S3 GET of a small object from Lambda, and Report's readers side by side.
S3_GET_MS: Final = 20.0
REPORT_READERS: Final = 16
# The model's AWS figures for a batch's Issue step (docs/invoicing.md, Timing): 99 invoices
# at 100-200 ms each, emails aside.
ISSUE_MS_PER_INVOICE: Final = 150.0


def _items(count: int) -> Iterator[Item]:
    for n in range(count):
        yield Item(account_id=f"acct-{n:07d}", period="2026-11")


def manifest_rate(items: int = 200_000) -> dict[str, float]:
    """Items per second the manifest writer takes (pydantic items to JSON parts), and the
    manifest's bytes per item."""
    sink = FakeS3(keep_parts=False)
    started = time.perf_counter()
    RunFiles(sink, "runs", part_size=PART_SIZE).write_manifest(
        "runs/r/", _Counted().batches_of(_items(items))
    )
    seconds = time.perf_counter() - started
    return {"items_per_second": round(items / seconds), "bytes_per_item": _written(sink) / items}


def _results(batches: int) -> FakeS3:
    """S3 holding `batches` results of full batches, for the Report step to read back."""
    done = {"issued": BATCH_SIZE, "skipped": 0, "emailed": BATCH_SIZE}
    body = json.dumps({**done, "failed": [], "undelivered": [], "send_failed": []}).encode()
    s3 = FakeS3(page_size=1000)
    s3.objects = {result_key("runs/r/", i): body for i in range(batches)}
    return s3


def _written(s3: FakeS3) -> int:
    """The bytes a manifest writer sent: its parts' (not kept) and any whole put's."""
    return s3.uploaded_bytes + sum(len(body) for body in s3.objects.values())


class _Quiet:
    def warning(self, *args: Any, **kwargs: Any) -> None: ...
    def info(self, *args: Any, **kwargs: Any) -> None: ...
    def exception(self, *args: Any, **kwargs: Any) -> None: ...


def report_rate(batches: int = 2_000) -> float:
    """Batch results per second the Report step reads and counts (CPU only: S3's latency is
    in the model)."""
    report = ReportRun(files=RunFiles(_results(batches), "runs"), log=_Quiet())
    started = time.perf_counter()
    answer = report.handle(
        {
            "folder": {"bucket": "runs", "prefix": "runs/r/"},
            "manifest": {"bucket": "runs", "key": "runs/r/manifest.json"},
            "batches": batches,
            "skipped": 0,
        }
    )
    seconds = time.perf_counter() - started
    assert answer["issued"] == batches * BATCH_SIZE, answer
    return round(batches / seconds)


def accounts_per_run_limit(manifest: dict[str, float], results_per_second: float) -> int:
    """The largest run whose ListDue and Report each end within Lambda's 15 minutes on AWS
    (this machine's rates scaled to Lambda's CPU share; DynamoDB batch calls at
    DYNAMODB_BATCH_MS one after another; S3 reads at S3_GET_MS with REPORT_READERS at
    once)."""
    per_item_s = 1 / (manifest["items_per_second"] * LAMBDA_CPU_SHARE) + (
        LIST_DUE_CALLS_PER_ACCOUNT * DYNAMODB_BATCH_MS / 1000
    )
    listing = LAMBDA_TIMEOUT_S / per_item_s
    per_batch_s = S3_GET_MS / 1000 / REPORT_READERS + 1 / (results_per_second * LAMBDA_CPU_SHARE)
    reporting = LAMBDA_TIMEOUT_S / per_batch_s * BATCH_SIZE
    return int(min(listing, reporting))


def month_end_hours(invoices: int, concurrency: int, emails_per_second: float) -> dict[str, Any]:
    """A month-end run's wall time on AWS: batches of 99, `concurrency` at once, each issuing
    its invoices (ISSUE_MS_PER_INVOICE) and emailing them at its share of SES's rate
    (emails_per_second / concurrency), whichever is slower."""
    batches = math.ceil(invoices / BATCH_SIZE)
    issue_s = BATCH_SIZE * ISSUE_MS_PER_INVOICE / 1000
    email_s = BATCH_SIZE / (emails_per_second / concurrency)
    waves = math.ceil(batches / concurrency)
    hours = waves * max(issue_s, email_s) / 3600
    return {
        "invoices": invoices,
        "concurrency": concurrency,
        "emails_per_second": emails_per_second,
        "batch_seconds": round(max(issue_s, email_s), 1),
        "bound_by": "email" if email_s > issue_s else "issue",
        "hours": round(hours, 1),
    }


def reads_per_hourly_run(total: int = 100_000, due: int = 1_000) -> dict[str, Any]:
    """What the real ListDue reads in an hourly run on 2 December, 00:00 UTC, when `due` of
    `total` accounts are hinted at November (due) and the rest at December (not yet), with
    the stores in memory counting what they are asked for; read units as DynamoDB charges
    them for the items' sizes (docs/invoicing.md, Finding what is due): each shard's index
    query at least half a unit (eventually consistent), each profile and each invoice-record
    key a unit (strongly consistent, under 4 KB; a key not found is charged too)."""
    book = workloads.accounts(total, workloads.catalog())
    accounts = book.accounts
    november, december = Period(2026, 11), Period(2026, 12)
    hints = {
        a.id: DueHint.of(november if n < due else december, a.zone) for n, a in enumerate(accounts)
    }
    config, invoices, store = MemoryConfig(accounts), MemoryInvoices(), MemoryHints(hints)
    run = ListDue(config=config, invoices=invoices, hints=store)
    found = run.find(DueInput(now=datetime(2026, 12, 2, tzinfo=UTC)))
    listed = sum(1 for _ in found.items)
    profiles, records = sum(config.read.values()), invoices.keys_read
    index = len(due_shards()) * 0.5 + math.ceil(due * HINT_BYTES / 4096) * 0.5
    return {
        "accounts": total,
        "due": due,
        "listed": listed,
        "profiles_read": profiles,
        "record_keys_read": records,
        "read_units": index + profiles + records,
    }


# DynamoDB returns at most 1 MB a Query page: about 13,000 hints of 75 bytes.
HINTS_PER_PAGE: Final = 13_000


class _MillionHints:
    """`count` accounts' hints, all due, produced page by page as the index's Query gives
    them (nothing held beyond a page), moves counted."""

    def __init__(self, count: int, hint: DueHint) -> None:
        self.count, self.hint, self.moves = count, hint, 0

    def due(self, cutoff: datetime) -> Iterator[list[StoredHint]]:
        for start in range(0, self.count, HINTS_PER_PAGE):
            stop = min(start + HINTS_PER_PAGE, self.count)
            yield [StoredHint(workloads.account_id(n), self.hint) for n in range(start, stop)]

    def settle(self, moves: Any) -> int:
        self.moves += len(moves)
        return len(moves)


class _AccountsOnDemand:
    """Every account is the workload's first one under another id: made when read, never
    stored (so what is measured is ListDue's memory, not the fake's)."""

    def __init__(self) -> None:
        self.model = workloads.accounts(1, workloads.catalog()).accounts[0]
        self.read = 0

    def read_accounts(self, account_ids: Any) -> dict[str, Any]:
        self.read += len(account_ids)
        return {a: self.model.model_copy(update={"id": a}) for a in account_ids}


class _NoInvoices:
    def __init__(self) -> None:
        self.keys_read = 0

    def get_many(self, keys: Any) -> dict[Any, Any]:
        self.keys_read += len(keys)
        return {}


def million_accounts(count: int = 1_000_000) -> dict[str, Any]:
    """The month-end hourly ListDue for `count` due accounts, as the Lambda step runs it:
    the index paged, the accounts and records read a hundred at a time, the manifest
    streamed to S3. Its memory (tracemalloc's peak over the whole step), the sizes of the
    step's output and of the Report step's output over as many batch results, and the reads
    per due account."""
    november = DueHint.of(
        Period(2026, 11), workloads.accounts(1, workloads.catalog()).accounts[0].zone
    )
    hints, config, invoices, sink = (
        _MillionHints(count, november),
        _AccountsOnDemand(),
        _NoInvoices(),
        FakeS3(keep_parts=False),
    )
    run = ListDue(
        config=config,  # type: ignore[arg-type]
        invoices=invoices,  # type: ignore[arg-type]
        hints=hints,  # type: ignore[arg-type]
        files=RunFiles(sink, "runs"),
    )
    tracemalloc.start()
    started = time.perf_counter()
    output = run.handle({"now": "2026-12-02T00:00:00Z"})
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert output["items"] == count, output
    report = ReportRun(files=RunFiles(_results(output["batches"]), "runs"), log=_Quiet())
    answer = report.handle(
        {
            "folder": {"bucket": "runs", "prefix": "runs/r/"},
            "manifest": output["manifest"],
            "batches": output["batches"],
            "skipped": 0,
        }
    )
    return {
        "accounts_due": count,
        "batches": output["batches"],
        "list_due_seconds_here": round(seconds, 1),
        "list_due_peak_memory_mb": round(peak / 2**20, 1),
        "manifest_mb": round(_written(sink) / 2**20, 1),
        "list_due_output_bytes": len(json.dumps(output)),
        "report_output_bytes": len(json.dumps(answer)),
        "profiles_read_per_due_account": config.read / count,
        "record_keys_read_per_due_account": invoices.keys_read / count,
    }


def scale_report() -> dict[str, Any]:
    manifest = manifest_rate()
    results = report_rate()
    return {
        "manifest_items_per_second": manifest["items_per_second"],
        "manifest_bytes_per_item": round(manifest["bytes_per_item"], 1),
        "report_results_per_second": results,
        "accounts_per_run_limit": accounts_per_run_limit(manifest, results),
        "reads_per_hourly_run": reads_per_hourly_run(),
        "million_accounts": million_accounts(),
        "month_end_1m": month_end_hours(1_000_000, 10, 14.0),
        "month_end_1m_at_100_per_second_40_batches": month_end_hours(1_000_000, 40, 100.0),
    }


if __name__ == "__main__":
    print(json.dumps(scale_report(), indent=2))
