"""`billing`: the command line (CONTRACT.md section 5)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from billing.core.catalog import Accounts, Catalog, CatalogError, load_accounts, load_catalog
from billing.core.events import parse_timestamp
from billing.core.invoice import Invoice, utc_text
from billing.core.money import plain, total
from billing.core.periods import Period, PeriodError
from billing.core.spend import running_charges
from billing.customer.account_views import BadRequest, NotFound
from billing.rating.rater import Outcome
from billing.rating.service import BatchReport
from billing.settings import RATING_BATCH_SIZE, RATING_BATCHING_WINDOW_SECONDS
from billing.store.errors import StoreError
from billing_cli import operations
from billing_cli.deployment import Deployment, DeploymentError, connect
from billing_cli.local.demo import demo_accounts, demo_catalog, demo_events
from billing_cli.local.esm import MappingSettings
from billing_cli.local.run import RunResult, run_pipeline
from billing_cli.local.runtime import LocalAws, local_aws
from billing_cli.preview import (
    RatingSummary,
    balanced,
    invoice_period,
    invoice_run_clock,
    rate_records,
)

app = typer.Typer(
    help="Real-time usage billing: rate usage events and issue invoices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


errors = Console(stderr=True)

EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        help="an AWS-compatible endpoint, e.g. the one `billing local` serves; default: AWS",
        show_default=False,
    ),
]
StackOption = Annotated[
    str | None,
    typer.Option(
        "--stack",
        help="the stack to work on; default: $BILLING_STACK, else the only UsageBilling-* one",
        show_default=False,
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region", help="AWS region; default: the credential chain's", show_default=False
    ),
]


@dataclass(frozen=True)
class Target:
    """Where the operator commands work: options given before the command, which the
    command's own options override."""

    endpoint_url: str | None = None
    stack: str | None = None
    region: str | None = None

    def connect(self, ctx: typer.Context, **given: str | None) -> Deployment:
        chosen = replace(
            ctx.obj if isinstance(ctx.obj, Target) else self,
            **{name: value for name, value in given.items() if value is not None},
        )
        try:
            return connect(chosen.endpoint_url, chosen.stack, chosen.region)
        except DeploymentError as error:
            raise fail(str(error)) from None


@app.callback()
def main(
    ctx: typer.Context,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
) -> None:
    """Real-time usage billing: rate usage events and issue invoices."""
    ctx.obj = Target(endpoint_url, stack, region)


CatalogOption = Annotated[Path, typer.Option("--catalog", help="catalog file (YAML or JSON)")]
AccountsOption = Annotated[Path, typer.Option("--accounts", help="accounts file (YAML or JSON)")]
EventsOption = Annotated[Path, typer.Option("--events", help="usage events, one JSON per line")]
PeriodOption = Annotated[str, typer.Option("--period", help="billing period, YYYY-MM")]
NowOption = Annotated[
    str | None,
    typer.Option("--now", help="the run's clock (RFC 3339); default: period end + grace"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


def read_records(path: Path) -> list[bytes]:
    """Each line of the file is one record; its line break is not part of it."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise fail(f"{path}: cannot be read ({error.strerror})") from None
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the file's final line break ends the last record, it opens no new one
    return [line.removesuffix(b"\r") for line in lines]


def parse_clock(text: str | None, default: datetime) -> datetime:
    if text is None:
        return default
    try:
        return parse_timestamp(text).at
    except ValueError as error:
        raise fail(f"--now {error}") from None


OutOption = Annotated[Path, typer.Option("--out", help="folder for invoices, emails, summary")]


def load_inputs(catalog: Path, accounts: Path, period: str) -> tuple[Catalog, Accounts, Period]:
    try:
        billing_period = Period.parse(period)
    except PeriodError as error:
        raise fail(str(error)) from None
    return *load_files(catalog, accounts), billing_period


def load_files(catalog: Path, accounts: Path) -> tuple[Catalog, Accounts]:
    try:
        loaded_catalog = load_catalog(catalog)
        return loaded_catalog, load_accounts(accounts, loaded_catalog)
    except CatalogError as error:
        raise fail(str(error)) from None


@app.command()
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


def exit_if_unfinished(report: dict[str, Any] | None) -> None:
    """Exit 1 naming the accounts when the invoice run failed or could not deliver any."""
    unfinished = operations.needing_attention(report or {})
    for line in unfinished:
        errors.print(line, highlight=False, markup=False, soft_wrap=True)
    if unfinished:
        raise typer.Exit(code=1)


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


@app.command()
def demo(
    accounts: Annotated[int, typer.Option(help="how many customers")] = 200,
    events: Annotated[int, typer.Option(help="how many usage records")] = 100_000,
    out: Annotated[Path, typer.Option(help="folder for what the run produces")] = Path("out/demo"),
    seed: Annotated[int, typer.Option(help="the workload's random seed")] = 2026,
    as_json: JsonOption = False,
) -> None:
    """The whole pipeline on a generated month of usage, with a live view of charges."""
    rng = random.Random(seed)
    catalog = demo_catalog()
    book = demo_accounts(accounts, catalog, rng)
    today = datetime.now(UTC)
    period = Period.containing(today, ZoneInfo("UTC")).previous()
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
        if not balanced(result.summary):
            raise typer.Exit(code=1)
        return
    console.print(
        f"[bold]Usage billing demo[/]: {accounts} customers, {events:,} usage records for "
        f"{period}, the invoice run at {clock:%Y-%m-%d %H:%M} UTC"
    )
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

    with Live(layout(), console=console, refresh_per_second=4) as live:
        result = run_pipeline(
            catalog, book, records, period, clock, out,
            progress=lambda text: progress.console.print(f"[dim]{text}[/]"),
            on_batch=on_batch,
        )  # fmt: skip
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
    if not balanced(summary):
        raise typer.Exit(code=1)


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
        charges = running_charges(plan, {period: meters})[period]
        amount = total(charges.values())
        table.add_row(account_id, account.name, f"{events:,}", f"{plain(amount)} {currency}")
    return table


@app.command()
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
    if as_json:
        document = {
            "summary": run.summary.to_json(),
            "invoices": [invoice.to_json() for invoice in invoices],
        }
        console.print_json(json.dumps(document))
        return
    for invoice in invoices:
        console.print(invoice_table(invoice))
    console.print(summary_table(run.summary))


def invoice_table(invoice: Invoice) -> Table:
    return invoice_document_table(invoice.to_json())


def summary_table(summary: RatingSummary) -> Table:
    return summary_table_from(summary.to_json())


def summary_table_from(summary: dict[str, Any]) -> Table:
    table = Table(title="records", title_justify="left")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    table.add_row("rated", str(summary["rated"]))
    table.add_row("duplicates", str(summary["duplicates"]))
    for reason, count in sorted(summary["rejected"].items()):
        table.add_row(f"rejected: {reason}", str(count))
    table.add_section()
    table.add_row("records", str(summary["records"]))
    return table


@app.command()
def local(
    port: Annotated[int, typer.Option(help="the endpoint's port on 127.0.0.1")] = 4566,
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
        with local_aws(server_port=port, clock=test_clock) as aws:
            if loaded is not None:
                aws.load(*loaded)
            stop = threading.Event()
            threads = [
                threading.Thread(target=poller.run, args=(stop,), daemon=True)
                for poller in aws.pollers(settings)
            ]
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
                    if test_clock is not None
                    else ""
                )
                + "Ctrl-C stops it; nothing is kept.",
                highlight=False,
            )
            try:
                stop.wait()
            except KeyboardInterrupt:
                stop.set()
            for thread in threads:
                thread.join(timeout=5)
    except OSError as error:
        raise fail(f"cannot serve on 127.0.0.1:{port}: {error.strerror}") from None


# --- operator commands: they work on a deployed stack, or on `billing local` ------------


def _parsed_period(period: str | None) -> Period | None:
    try:
        return Period.parse(period) if period is not None else None
    except PeriodError as error:
        raise fail(str(error)) from None


@app.command()
def send(
    ctx: typer.Context,
    events: Annotated[Path, typer.Argument(help="usage events, one JSON per line")],
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put usage events on the stream: validated, batched, failed records resent."""
    records = read_records(events)
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    result = operations.send_records(deployment, records)
    if as_json:
        console.print_json(json.dumps(result.to_json()))
    else:
        for refused in result.refused:
            errors.print(
                f"{events}:{refused['line']}: {refused['reason']}: {refused['message']}",
                highlight=False,
                markup=False,
            )
        console.print(
            f"{result.sent:,} of {result.records:,} records sent to {deployment.stack} "
            f"in {result.calls:,} PutRecords calls ({result.resent:,} resent), "
            f"{len(result.refused):,} refused"
        )
        if result.error:
            errors.print(
                f"[bold red]error:[/] {result.error}; {result.not_sent:,} records not sent. "
                "Sending the file again is safe: events already sent count once.",
                highlight=False,
            )
    if result.refused or result.not_sent:
        raise typer.Exit(code=1)


@app.command()
def usage(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="the account's id")],
    period: Annotated[
        str | None,
        typer.Option("--period", help="YYYY-MM; default: the account's current period"),
    ] = None,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """The account's usage and running charges so far, and the invoice they make now."""
    _parsed_period(period)
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        report = deployment.views(clock=operations.local_test_clock(deployment)).usage(
            account, period
        )
    except (NotFound, BadRequest, CatalogError) as error:
        raise fail(str(error)) from None
    except StoreError as error:
        raise fail(f"cannot read the usage: {error}") from None
    if as_json:
        console.print_json(json.dumps(report.to_json()))
    else:
        console.print(usage_table(report.to_json()))


def usage_table(document: dict[str, Any]) -> Table:
    currency = document["currency"]
    table = Table(
        title=f"{document['account_id']} · {document['period']} ({document['status']})",
        caption=f"as of {document['as_of']}",
        title_justify="left",
    )
    table.add_column("usage")
    table.add_column("quantity", justify="right")
    table.add_column("events", justify="right")
    table.add_column(f"so far ({currency})", justify="right")
    for meter in document["meters"]:
        unit = f" {meter['unit']}" if meter["unit"] else ""
        table.add_row(
            meter["description"], f"{meter['quantity']}{unit}", f"{meter['events']:,}", ""
        )
        for charge in meter["charges"]:
            table.add_row(
                f"  {charge['description']}",
                charge["quantity"],
                f"{charge['events']:,}",
                charge["amount"],
            )
    table.add_section()
    table.add_row("usage charges", "", "", document["usage_subtotal"])
    preview = document["invoice_preview"]
    for line in preview["lines"]:
        if line["kind"] != "usage":
            table.add_row(line["description"], "", "", line["amount"])
    table.add_row("subtotal", "", "", preview["subtotal"])
    table.add_row("tax", "", "", preview["tax"])
    table.add_row("[bold]invoice if issued now[/]", "", "", f"[bold]{preview['total']}[/]")
    return table


invoices_app = typer.Typer(help="Invoice runs.", no_args_is_help=True)
app.add_typer(invoices_app, name="invoices")


@invoices_app.command("run")
def invoices_run(
    ctx: typer.Context,
    period: Annotated[
        str | None,
        typer.Option("--period", help="only this period, YYYY-MM; default: every one due"),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            help="the run's clock (RFC 3339); default: now, or the local runtime's test clock",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="wait for its counts")] = True,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start the invoice workflow now (it invoices only what is due and not yet invoiced)."""
    billing_period = _parsed_period(period)
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        clock = parse_clock(now, operations.run_clock(deployment))
        early = operations.not_due(deployment, billing_period, clock) if billing_period else None
        if early is not None:
            say(
                {
                    "period": str(early.period),
                    "now": utc_text(clock),
                    "due": False,
                    "first_due_at": utc_text(early.first),
                    "all_due_at": utc_text(early.last),
                },
                f"nothing started: {early}",
                as_json,
            )
            raise typer.Exit(code=1)
        run = operations.start_invoice_run(deployment, billing_period, clock)
    except operations.OperationError as error:
        raise fail(str(error)) from None
    if not as_json:
        console.print(f"invoice run {run.name} started")
    if wait:
        run = operations.wait_for(deployment, run)
    if as_json:
        console.print_json(json.dumps(run.to_json()))
    elif run.report is not None:
        counts = ", ".join(
            f"{count} {name}" for name, count in run.report.items() if name != "failures"
        )
        console.print(f"invoice run {run.status.lower()}: {counts}")
    elif run.error is not None:
        errors.print(f"[bold red]invoice run {run.status.lower()}:[/] {run.error}", highlight=False)
    if run.status not in {"RUNNING", "SUCCEEDED"}:
        raise typer.Exit(code=1)
    exit_if_unfinished(run.report)


StatusOption = Annotated[
    str | None,
    typer.Option(
        "--status",
        help="numbered, stored, sending, sent, undelivered, unknown, bounced or complained",
    ),
]


@invoices_app.command("list")
def invoices_list(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option("--account", help="only this account")] = None,
    period: Annotated[str | None, typer.Option("--period", help="only this period")] = None,
    status: StatusOption = None,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """The invoices issued, by number, with their totals and where each one is."""
    billing_period = _parsed_period(period)
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        rows = operations.list_invoices(deployment, account, billing_period, status)
    except operations.OperationError as error:
        raise fail(str(error)) from None
    if as_json:
        console.print_json(json.dumps({"invoices": rows}))
        return
    table = Table(title=f"invoices in {deployment.stack}", title_justify="left")
    for column in ("invoice", "account", "period", "total", "status"):
        table.add_column(column, justify="right" if column == "total" else "left")
    for row in rows:
        total_text = f"{row['total']} {row['currency']}" if row["total"] else ""
        table.add_row(
            row["invoice_number"], row["account_id"], row["period"], total_text, row["status"]
        )
    console.print(table)


@invoices_app.command("show")
def invoices_show(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="the invoice number, e.g. INV-2026-000042")],
    pdf: Annotated[
        Path | None, typer.Option("--pdf", help="write the stored PDF to this file")
    ] = None,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """One invoice as it was stored (its JSON document), where it is, and its PDF."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        record = operations.find_invoice(deployment, number)
        document, pdf_bytes = operations.invoice_documents(deployment, record)
    except operations.OperationError as error:
        raise fail(str(error)) from None
    if pdf is not None:
        try:
            pdf.write_bytes(pdf_bytes)
        except OSError as error:
            raise fail(f"{pdf}: cannot be written ({error.strerror})") from None
    if as_json:
        console.print_json(
            json.dumps({"record": operations.invoice_row(record), "invoice": document})
        )
        return
    console.print(invoice_document_table(document))
    console.print(f"status: {operations.invoice_state(record)}", highlight=False)
    if pdf is not None:
        console.print(f"PDF written to {pdf}", highlight=False)


def invoice_document_table(document: dict[str, Any]) -> Table:
    table = Table(
        title=f"{document['invoice_number']} · {document['account_id']} · {document['period']}",
        caption=f"{document['period_start']} → {document['period_end']}",
        title_justify="left",
    )
    table.add_column("line")
    table.add_column("quantity", justify="right")
    table.add_column(f"amount ({document['currency']})", justify="right")
    for line in document["lines"]:
        table.add_row(line["description"], line["quantity"], line["amount"])
    table.add_section()
    table.add_row("subtotal", "", document["subtotal"])
    table.add_row("tax", "", document["tax"])
    table.add_row("[bold]total[/]", "", f"[bold]{document['total']}[/]")
    return table


@invoices_app.command("resend")
def invoices_resend(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="the invoice number, e.g. INV-2026-000042")],
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Email a stored invoice again (after its address was mended, a bounce, or an email
    not known to have left): the stored PDF, to the account's address as it is now."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        result = operations.resend_invoice(deployment, number)
    except operations.OperationError as error:
        raise fail(str(error)) from None
    detail = result.get("message_id") or result.get("reason") or ""
    say(result, f"{number}: {result['status']} {detail}".rstrip(), as_json)
    if result["status"] != "sent":
        raise typer.Exit(code=1)


clock_app = typer.Typer(
    help="The local runtime's test clock (`billing local --clock T`).", no_args_is_help=True
)
app.add_typer(clock_app, name="clock")


@clock_app.command("show")
def clock_show(
    ctx: typer.Context,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """The test clock's time: what the local rater and invoice runs take as now."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack)
    try:
        now = operations.read_test_clock(deployment)
    except operations.OperationError as error:
        raise fail(str(error)) from None
    say({"now": utc_text(now)}, f"test clock: {utc_text(now)}", as_json)


@clock_app.command("advance")
def clock_advance(
    ctx: typer.Context,
    to: Annotated[str | None, typer.Option("--to", help="to this time (RFC 3339)")] = None,
    by: Annotated[str | None, typer.Option("--by", help="by this long: 90s, 45m, 6h, 31d")] = None,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move the test clock forward, e.g. past a period's end plus the grace time, so that
    `billing invoices run` closes and invoices it."""
    if (to is None) == (by is None):
        raise fail("give one of --to or --by")
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack)
    try:
        current = operations.read_test_clock(deployment)
        target = parse_clock(to, current) if to is not None else current + _duration(by or "")
        now = operations.set_test_clock(deployment, target)
    except operations.OperationError as error:
        raise fail(str(error)) from None
    say({"now": utc_text(now)}, f"test clock: {utc_text(now)}", as_json)


_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _duration(text: str) -> timedelta:
    number, unit = text[:-1], text[-1:]
    if not number.isdigit() or unit not in _UNITS:
        raise fail(f"--by {text!r}: write a whole number and a unit: 90s, 45m, 6h, 31d")
    return timedelta(**{_UNITS[unit]: int(number)})


catalog_app = typer.Typer(help="The catalog of meters and plans.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
accounts_app = typer.Typer(help="The customer accounts.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
Pushed = TypeVar("Pushed", Catalog, Accounts)


@catalog_app.command("push")
def catalog_push(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="catalog file (YAML or JSON)")],
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate a catalog file and store it (whole, or not at all)."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    catalog = _pushed(operations.push_catalog, deployment, file)
    meters, plans = len(catalog.meters), len(catalog.plans)
    say(
        {"stack": deployment.stack, "meters": meters, "plans": plans},
        f"catalog stored in {deployment.stack}: {meters} meters, {plans} plans",
        as_json,
    )


@accounts_app.command("push")
def accounts_push(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="accounts file (YAML or JSON)")],
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate an accounts file against the stored catalog and store its accounts."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    count = len(_pushed(operations.push_accounts, deployment, file).accounts)
    say(
        {"stack": deployment.stack, "accounts": count},
        f"{count} accounts stored in {deployment.stack}",
        as_json,
    )


def _pushed(
    push: Callable[[Deployment, Path], Pushed], deployment: Deployment, file: Path
) -> Pushed:
    try:
        return push(deployment, file)
    except (CatalogError, operations.OperationError) as error:
        raise fail(str(error)) from None


def say(document: dict[str, Any], text: str, as_json: bool) -> None:
    """The command's result: its JSON document, or a line for a person."""
    if as_json:
        console.print_json(json.dumps(document))
    else:
        console.print(text, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    app()
