"""What the commands share: the consoles, the options, where a command works, and the
tables more than one command prints."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from billing.core.catalog import Accounts, Catalog, CatalogError, load_accounts, load_catalog
from billing.core.events import parse_timestamp
from billing.core.periods import Period, PeriodError
from billing_cli import operations
from billing_cli.deployment import Deployment, DeploymentError, connect

console = Console()
# Errors are not hard-wrapped: a message that names a long path keeps it whole on one line.
errors = Console(stderr=True, soft_wrap=True)

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


def parsed_period(period: str | None) -> Period | None:
    try:
        return Period.parse(period) if period is not None else None
    except PeriodError as error:
        raise fail(str(error)) from None


def exit_if_unfinished(report: dict[str, Any] | None) -> None:
    """Exit 1 naming the accounts when the invoice run failed or could not deliver any."""
    unfinished = operations.needing_attention(report or {})
    for line in unfinished:
        errors.print(line, highlight=False, markup=False, soft_wrap=True)
    if unfinished:
        raise typer.Exit(code=1)


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


def say(document: dict[str, Any], text: str, as_json: bool) -> None:
    """The command's result: its JSON document, or a line for a person."""
    if as_json:
        console.print_json(json.dumps(document))
    else:
        console.print(text, highlight=False, soft_wrap=True)
