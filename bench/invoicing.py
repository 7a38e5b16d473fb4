"""The invoice workflow's benchmarks. `python bench/invoicing.py --json`.

- pdf_render_ms: median time to render one invoice's PDF (the workload's invoices).
- pdf_render_200_lines_ms: median time to render a 200-line invoice (five pages).
- pdf_render_cjk_ms: median time to render a workload invoice for a Japanese-named account
  (the Noto fonts, CJK included, embedded as subsets).
- invoices_per_second: invoices built, stored and emailed per second by the real
  workflow (ASL run by moto's interpreter, tasks by the project's handlers) on the local
  runtime, for 1,000 accounts with usage on every meter.
- large_run: the same workflow invoicing 5,000 accounts in one run (51 batches of the
  Distributed Map), every state's payload small (`--large-run 0` skips it).
- accounts_per_run_limit, month_end_1m, ...: the run at scale (bench/run_scale.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads
from billing.core.invoice import utc_text
from billing.core.money import Money
from billing.core.periods import Period
from billing.invoicing.document import render_invoice_pdf
from billing.rating.service import RatingService
from billing_cli.local.runtime import local_aws
from billing_cli.preview import invoice_period, invoice_run_clock, rate_records
from rater import Discard, StaticConfig, shard
from run_scale import scale_report

GOALS = {"pdf_render_ms": 10, "invoices_per_second": 50}
PERIOD = Period(2026, 11)


def pdf_render_ms(accounts: int, events: int) -> float:
    catalog = workloads.catalog()
    book = workloads.accounts(accounts, catalog)
    run = rate_records(
        workloads.skewed(random.Random(5), events, accounts), catalog, book, workloads.NOW
    )
    invoices = invoice_period(PERIOD, catalog, book, run.ledger, workloads.NOW)
    render_invoice_pdf(invoices[0], book.by_id[invoices[0].account_id])  # warm up
    samples = []
    for invoice in invoices:
        started = time.perf_counter()
        render_invoice_pdf(invoice, book.by_id[invoice.account_id])
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 2)


def _median_ms(render: Any, runs: int) -> float:
    render()  # warm up
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        render()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 2)


def pdf_render_variants_ms() -> dict[str, float]:
    """A 200-line invoice, and a typical one for an account whose name needs CJK fonts."""
    catalog = workloads.catalog()
    book = workloads.accounts(20, catalog)
    run = rate_records(workloads.skewed(random.Random(5), 2_000, 20), catalog, book, workloads.NOW)
    invoice = invoice_period(PERIOD, catalog, book, run.ledger, workloads.NOW)[0]
    account = book.by_id[invoice.account_id]
    lines = tuple(invoice.lines[n % len(invoice.lines)] for n in range(200))
    subtotal = sum((line.amount for line in lines), Money.zero(invoice.currency))
    long = dataclasses.replace(
        invoice, lines=lines, subtotal=subtotal, tax=Money.zero(invoice.currency), total=subtotal
    )
    japanese = account.model_copy(update={"name": "東京データ株式会社", "locale": "ja"})
    return {
        "pdf_render_200_lines_ms": _median_ms(lambda: render_invoice_pdf(long, account), 9),
        "pdf_render_cjk_ms": _median_ms(lambda: render_invoice_pdf(invoice, japanese), 3),
    }


def invoices_per_second(accounts: int, events: int) -> dict[str, Any]:
    catalog = workloads.catalog()
    book = workloads.accounts(accounts, catalog)
    records = shard(workloads.skewed(random.Random(6), events, accounts))
    with local_aws() as aws:
        aws.load(catalog, book)
        rater = RatingService(
            StaticConfig(catalog, book), aws.ledgers, Discard(), lambda: workloads.NOW
        )
        for start in range(0, len(records), 1000):
            assert not rater.process(records[start : start + 1000]).failed
        started = time.perf_counter()
        now = utc_text(invoice_run_clock(PERIOD, book))
        counts = aws.run_invoices("bench", {"period": str(PERIOD), "now": now})
        seconds = time.perf_counter() - started
        emails = len(aws.sent_emails())
    assert counts["issued"] == accounts, counts
    assert counts["emailed"] == accounts, counts
    assert emails == accounts
    return {
        "invoices": accounts,
        "seconds": round(seconds, 2),
        "per_second": round(accounts / seconds, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--large-run", type=int, default=5000)
    args = parser.parse_args(argv)
    run = invoices_per_second(args.accounts, args.accounts * 20)
    large = invoices_per_second(args.large_run, args.large_run * 4) if args.large_run else None
    report = {
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "pdf_render_ms": pdf_render_ms(200, 20_000),
        **pdf_render_variants_ms(),
        "invoices_per_second": run["per_second"],
        "workflow_run": run,
        "large_run": large,
        **scale_report(),
        "goals": GOALS,
    }
    print(json.dumps(report, indent=None if args.json else 2))
    return report


if __name__ == "__main__":
    main()
