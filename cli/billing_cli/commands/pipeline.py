"""The commands that run the pipeline here, on an embedded AWS or none: `run`, `demo`,
`preview`, and `local`, which serves it for the other commands."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from billing.core.catalog import Accounts, Catalog
from billing.core.credentials import DEFAULT_PORTAL_HOURS
from billing.core.invoice import Invoice, utc_text
from billing.core.money import plain, plain_quantity, total
from billing.core.periods import Period
from billing.core.phases import Phases
from billing.core.spend import running_charges
from billing.core.unpriced_usage import UnpricedView
from billing.rating.rater import Outcome
from billing.rating.service import BatchReport
from billing.settings import RATING_BATCH_SIZE, RATING_BATCHING_WINDOW_SECONDS
from billing_cli import operations
from billing_cli.commands.common import (
    AccountsOption,
    CatalogOption,
    EventsOption,
    JsonOption,
    NowOption,
    OutOption,
    PeriodOption,
    console,
    errors,
    exit_if_unfinished,
    fail,
    invoice_document_table,
    load_files,
    load_inputs,
    parse_clock,
    read_records,
    summary_table_from,
)
from billing_cli.local.demo import demo_accounts, demo_catalog, demo_events
from billing_cli.local.esm import MappingSettings
from billing_cli.local.run import RunResult, Serve, run_pipeline
from billing_cli.local.runtime import LocalAws, local_aws
from billing_cli.preview import (
    RatingSummary,
    balanced,
    invoice_period,
    invoice_run_clock,
    rate_records,
    unpriced_period,
)


def run(
    catalog: CatalogOption,
    accounts: AccountsOption,
    events: EventsOption,
    period: PeriodOption,
    out: OutOption,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run the whole pipeline on a fresh embedded local AWS and write what it produced."""
    loaded_catalog, loaded_accounts, billing_period = load_inputs(catalog, accounts, period)
    clock = parse_clock(now, invoice_run_clock(billing_period, loaded_accounts))
    records = read_records(events)
    say = (lambda _: None) if as_json else (lambda text: errors.print(f"[dim]{text}[/]"))
    result = run_pipeline(
        loaded_catalog, loaded_accounts, records, billing_period, clock, out, progress=say
    )
    # A clock before some accounts' period is due (a `--now` inside the period, say)
    # invoices only the others: said on stderr and in the JSON, never silently.
    later = operations.not_due_yet(loaded_accounts.accounts, billing_period, clock)
    if as_json:
        not_due = [{"account_id": a, "due_at": utc_text(at)} for a, at in later]
        console.print_json(
            json.dumps(
                {
                    "summary": result.summary,
                    "invoices": result.invoices,
                    "run": result.report,
                    "not_due": not_due,
                }
            )
        )
    else:
        print_run(result, billing_period, out)
    for account_id, at in later:
        errors.print(
            f"{account_id} {billing_period}: not invoiced: not due until {utc_text(at)} "
            f"(the run's clock is {utc_text(clock)})",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    exit_if_unfinished(result.report)


def print_run(result: RunResult, billing_period: Period, out: Path) -> None:
    table = Table(title=f"invoices for {billing_period}", title_justify="left")
    for column in ("invoice", "account", "total"):
        table.add_column(column, justify="right" if column == "total" else "left")
    for number in result.invoices:
        document = json.loads((out / "invoices" / f"{number}.json").read_text())
        table.add_row(number, document["account_id"], f"{document['total']} {document['currency']}")
    console.print(table)
    console.print(summary_table_from(result.summary))
    console.print(
        f"PDFs and JSON in {out / 'invoices'}, emails in {out / 'emails'}, "
        f"rejected records in {out / 'rejected.jsonl'}"
    )


def demo(
    accounts: Annotated[int, typer.Option(help="how many customers")] = 200,
    events: Annotated[int, typer.Option(help="how many usage records")] = 100_000,
    out: Annotated[Path, typer.Option(help="folder for what the run produces")] = Path("out/demo"),
    seed: Annotated[int, typer.Option(help="the workload's random seed")] = 2026,
    as_json: JsonOption = False,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="then serve the run as `billing local` does, and print a customer's portal "
            "link, until Ctrl-C",
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="with --serve: the local endpoint's port")] = 4566,
    customer_api_port: Annotated[
        int, typer.Option(help="with --serve: the customer API's port")
    ] = 4567,
) -> None:
    """The whole pipeline on a generated month of usage, with a live view of charges."""
    if serve and as_json:
        raise fail("--serve shows the live view and then serves: not with --json")
    rng = random.Random(seed)
    catalog = demo_catalog()
    today = datetime.now(UTC)
    period = Period.containing(today, ZoneInfo("UTC")).previous()
    book = demo_accounts(accounts, catalog, rng, period)
    records = demo_events(book, period, events, rng)
    clock = invoice_run_clock(period, book)
    if as_json:  # no live view: the counts and timings of the run, for scripts and benchmarks
        result = run_pipeline(catalog, book, records, period, clock, out)
        document = {
            "summary": result.summary,
            "run": result.report,
            "seconds": result.seconds,
            "invoices": str(out / "invoices"),
            "emails": str(out / "emails"),
        }
        console.print_json(json.dumps(document))
    else:
        console.print(
            f"[bold]Usage billing demo[/]: {accounts} customers, {events:,} usage records for "
            f"{period}, the invoice run at {clock:%Y-%m-%d %H:%M} UTC"
        )
        then = Serve(port, customer_api_port, lambda aws, run: serve_demo(aws, book, run, out))
        try:
            result = run_with_live_view(
                catalog, book, records, period, clock, out, then if serve else None
            )
        except OSError as error:
            if error.errno is None:  # not a port that could not be had
                raise
            raise fail(
                f"cannot serve on 127.0.0.1:{port} and :{customer_api_port}: {error.strerror}"
            ) from None
        if not serve:
            print_demo(result, out)
    if not balanced(result.summary):
        raise typer.Exit(code=1)


def run_with_live_view(
    catalog: Catalog,
    book: Accounts,
    records: list[bytes],
    period: Period,
    clock: datetime,
    out: Path,
    serve: Serve | None = None,
) -> RunResult:
    """The pipeline run under a progress bar and, refreshed about once a second, the
    running charges of the accounts with the most events rated; then, given `serve`, the
    live view ends and the run is served."""
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )
    rating = progress.add_task("rating", total=len(records))

    def layout(charges: Table | None = None) -> Table:
        grid = Table.grid()
        grid.add_row(progress)
        if charges is not None:
            grid.add_row(charges)
        return grid

    shown = [0.0]
    rated: Counter[str] = Counter()  # events rated per account, to pick the busiest

    def on_batch(report: BatchReport, aws: LocalAws) -> None:
        progress.advance(rating, len(report.results))
        rated.update(
            result.account_id
            for result in report.results.values()
            if result.outcome is Outcome.RATED and result.account_id
        )
        done = progress.tasks[0].completed >= len(records)
        if done or time.monotonic() - shown[0] > 1:
            live.update(layout(top_charges(aws, book, catalog, str(period), rated)))
            shown[0] = time.monotonic()

    def after_live_view(aws: LocalAws, result: RunResult) -> None:
        live.stop()
        assert serve is not None
        serve.then(aws, result)

    with Live(layout(), console=console, refresh_per_second=4) as live:
        return run_pipeline(
            catalog, book, records, period, clock, out,
            progress=lambda text: progress.console.print(f"[dim]{text}[/]"),
            on_batch=on_batch,
            serve=replace(serve, then=after_live_view) if serve else None,
        )  # fmt: skip


def serve_demo(aws: LocalAws, book: Accounts, result: RunResult, out: Path) -> None:
    """The demo's summary, a portal link for its first customer, then the run served as
    `billing local` serves (usage sent to it is rated as it arrives) until Ctrl-C."""
    print_demo(result, out)
    assert aws.customer_api is not None
    account = book.accounts[0]
    link = aws.customer_api.portal_link(aws.config, account.id, DEFAULT_PORTAL_HOURS)
    console.print(
        f"[bold]customer portal[/] of {account.id} ({account.name}), for "
        f"{DEFAULT_PORTAL_HOURS} hours, while this runs: open in a browser",
        highlight=False,
    )
    console.print(f"  {link}", highlight=False, markup=False, soft_wrap=True)
    settings = MappingSettings(RATING_BATCH_SIZE, RATING_BATCHING_WINDOW_SECONDS)
    serve_until_interrupted(aws, settings, on_test_clock=False)


def print_demo(result: RunResult, out: Path) -> None:
    """What the demo's run did, how long each part took, and whether every record is
    accounted for."""
    summary = result.summary
    console.print(summary_table_from(summary))
    console.print(
        f"invoice run: {result.report.get('issued', 0)} issued, "
        f"{result.report.get('emailed', 0)} emailed, {result.report.get('failed', 0)} failed"
    )
    console.print(f"PDFs and JSON in {out / 'invoices'}, emails in {out / 'emails'}")
    parts = result.seconds
    console.print(
        f"on the stream in {parts['send_seconds']:.1f} s, rated in {parts['rate_seconds']:.1f} s, "
        f"invoiced in {parts['invoice_seconds']:.1f} s"
    )
    mark = "[green]✓[/]" if balanced(summary) else "[red]✗[/]"
    console.print(
        f"{mark} records in = rated + duplicates + rejected: {summary['records']:,} = "
        f"{summary['rated']:,} + {summary['duplicates']:,} + "
        f"{sum(summary['rejected'].values()):,}"
    )


def top_charges(
    aws: LocalAws,
    accounts: Accounts,
    catalog: Catalog,
    period: str,
    rated: Counter[str],
    top: int = 8,
) -> Table:
    """The busiest accounts (most events rated) and their running usage charges, read from
    their ledgers as a customer would see them. Busiest, not dearest: charges in different
    currencies do not compare."""
    busiest = [account_id for account_id, _ in rated.most_common(top)]
    ledgers = aws.ledgers.load(busiest, fresh=True)
    table = Table(title=f"running usage charges, {period}", title_justify="left")
    table.add_column("account")
    table.add_column("name")
    table.add_column("events", justify="right")
    table.add_column("charges so far", justify="right")
    for account_id in busiest:
        ledger = ledgers.get(account_id)
        if ledger is None:
            continue
        meters = ledger.usage.get(period, {})
        events = sum(usage.total.events for usage in meters.values())
        account = accounts.by_id[account_id]
        plan = catalog.plans_by_id[account.plan]
        currency = plan.currency
        phases = Phases(account, catalog) if account.changes else None
        charges = running_charges(plan, {period: meters}, phases)[period]
        amount = total(charges.values())
        table.add_row(account_id, account.name, f"{events:,}", f"{plain(amount)} {currency}")
    return table


def preview(
    catalog: CatalogOption,
    accounts: AccountsOption,
    events: EventsOption,
    period: PeriodOption,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rate an events file and preview the period's invoices, in memory (no AWS at all)."""
    loaded_catalog, loaded_accounts, billing_period = load_inputs(catalog, accounts, period)
    clock = parse_clock(now, invoice_run_clock(billing_period, loaded_accounts))
    run = rate_records(read_records(events), loaded_catalog, loaded_accounts, clock)
    invoices = invoice_period(
        billing_period, loaded_catalog, loaded_accounts, run.ledger, issued_at=clock
    )
    unpriced = unpriced_period(billing_period, loaded_catalog, loaded_accounts, run.ledger)
    if as_json:
        document = {
            "summary": run.summary.to_json(),
            "invoices": [invoice.to_json() for invoice in invoices],
            "unpriced": {
                account: [view.to_json() for view in views] for account, views in unpriced.items()
            },
        }
        console.print_json(json.dumps(document))
        return
    for invoice in invoices:
        console.print(invoice_table(invoice))
    if unpriced:
        console.print(unpriced_table(unpriced))
    console.print(summary_table(run.summary))


def invoice_table(invoice: Invoice) -> Table:
    return invoice_document_table(invoice.to_json())


def unpriced_table(unpriced: Mapping[str, Sequence[UnpricedView]]) -> Table:
    """Usage no charge of its account's plan took, one row per meter (and phase)."""
    table = Table(title="Unpriced usage (rated, not on the invoices)", title_justify="left")
    for column in ("account", "meter", "quantity", "events", "values"):
        table.add_column(column, justify="right" if column in ("quantity", "events") else "left")
    for account, views in unpriced.items():
        for view in views:
            why = "no charge" if view.reason == "no_charge" else "no filter matched"
            phase = f", {view.phase.plan} from {view.phase.first}" if view.phase else ""
            values = ", ".join(
                f"{'(none)' if v.value is None else v.value}: {v.events}" for v in view.values
            )
            if view.other_events:
                values += f", other: {view.other_events}"
            table.add_row(
                account,
                f"{view.meter} ({why}{phase})",
                plain_quantity(view.quantity),
                f"{view.events:,}",
                escape(f"{view.dimension} " + values) if view.dimension else "",
            )
    return table


def summary_table(summary: RatingSummary) -> Table:
    return summary_table_from(summary.to_json())


def local(
    port: Annotated[int, typer.Option(help="the endpoint's port on 127.0.0.1")] = 4566,
    customer_api_port: Annotated[
        int, typer.Option(help="the customer API's port on 127.0.0.1 (0: any free one)")
    ] = 4567,
    catalog: Annotated[
        Path | None, typer.Option("--catalog", help="a catalog file to push at start")
    ] = None,
    accounts: Annotated[
        Path | None, typer.Option("--accounts", help="an accounts file to push at start")
    ] = None,
    clock: Annotated[
        str | None,
        typer.Option(
            "--clock",
            help="run on a test clock starting at this time (RFC 3339), moved on with "
            "`billing clock advance`; default: the real time",
        ),
    ] = None,
) -> None:
    """Serve the whole pipeline on a local endpoint until Ctrl-C: the other commands reach
    it with --endpoint-url. Usage put on its stream is rated as it arrives."""
    test_clock = parse_clock(clock, datetime.now(UTC)) if clock is not None else None
    loaded = None
    if catalog is not None or accounts is not None:
        if catalog is None or accounts is None:
            raise fail("--catalog and --accounts go together")
        loaded = load_files(catalog, accounts)
    settings = MappingSettings(RATING_BATCH_SIZE, RATING_BATCHING_WINDOW_SECONDS)
    try:
        with local_aws(
            server_port=port, clock=test_clock, customer_api_port=customer_api_port
        ) as aws:
            if loaded is not None:
                aws.load(*loaded, test_clock)
            serve_until_interrupted(aws, settings, on_test_clock=test_clock is not None)
    except OSError as error:
        raise fail(
            f"cannot serve on 127.0.0.1:{port} and :{customer_api_port}: {error.strerror}"
        ) from None


def serve_until_interrupted(
    aws: LocalAws, settings: MappingSettings, *, on_test_clock: bool
) -> None:
    """Rate what arrives on the stream (a poller thread per shard), alert on what the
    ledgers' writes cross (spend_alerts on their stream), archive what the stream
    carries (as Firehose does) and deliver domain events to webhook endpoints, until
    Ctrl-C."""
    stop = threading.Event()
    runs: list[Callable[[threading.Event], None]] = [p.run for p in aws.pollers(settings)]
    runs.append(aws.alert_poller().run)
    runs.append(aws.webhook_poller().run)
    runs.append(aws.firehose().run)
    threads = [threading.Thread(target=run, args=(stop,), daemon=True) for run in runs]
    for thread in threads:
        thread.start()
    console.print(
        f"[bold]local endpoint[/] {aws.endpoint_url} (stack UsageBilling-local): "
        f"usage on its stream is rated within about {settings.batching_window_seconds} s."
        "\nTry, in another terminal:\n"
        f"  billing --endpoint-url {aws.endpoint_url} send events.jsonl\n"
        f"  billing --endpoint-url {aws.endpoint_url} usage ACCOUNT\n"
        f"  billing --endpoint-url {aws.endpoint_url} invoices run\n"
        + (
            f"  billing --endpoint-url {aws.endpoint_url} clock advance --by 31d\n"
            if on_test_clock
            else ""
        )
        + _customer_api_lines(aws)
        + "Ctrl-C stops it; nothing is kept.",
        highlight=False,
    )
    try:
        stop.wait()
    except KeyboardInterrupt:
        stop.set()
    for thread in threads:
        thread.join(timeout=5)


def _customer_api_lines(aws: LocalAws) -> str:
    """Where the customer API is served, and how to get a key or a portal link for it."""
    if aws.customer_api is None:
        return ""
    url, endpoint = aws.customer_api.url, aws.endpoint_url
    return (
        f"[bold]customer API[/] {url} (as API Gateway serves it, throttling aside):\n"
        f"  billing --endpoint-url {endpoint} keys create ACCOUNT\n"
        f"  curl -H 'Authorization: Bearer <key>' {url}v1/accounts/ACCOUNT\n"
        f"  billing --endpoint-url {endpoint} portal-link ACCOUNT\n"
    )
