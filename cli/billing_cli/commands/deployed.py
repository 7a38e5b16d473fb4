"""The commands that work on a deployed stack (or on `billing local`): `send`, `usage`,
`catalog push`, `accounts push`, and the local runtime's test clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from billing.core.catalog import Accounts, Catalog, CatalogError
from billing.core.invoice import utc_text
from billing.customer.account_views import BadRequest, NotFound
from billing.store.errors import StoreError
from billing_cli import operations
from billing_cli.commands.common import (
    EndpointOption,
    JsonOption,
    RegionOption,
    StackOption,
    Target,
    console,
    errors,
    fail,
    parse_clock,
    parsed_period,
    read_records,
    say,
)
from billing_cli.commands.rejected import WaitOption, outcome_lines, reported
from billing_cli.deployment import Deployment
from billing_cli.sending import Waiting


def send(
    ctx: typer.Context,
    events: Annotated[Path, typer.Argument(help="usage events, one JSON per line")],
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
    wait: WaitOption = None,
) -> None:
    """Put usage events on the stream: validated, batched, failed records resent; with
    --wait, then report what the service did with them."""
    records = read_records(events)
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    with reported():
        waiting = Waiting(wait, operations.run_clock(deployment)) if wait is not None else None
        result = operations.send_records(deployment, records, waiting)
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
        if result.outcomes is not None:
            console.print(outcome_lines(result.outcomes), highlight=False)
        if result.error:
            errors.print(
                f"[bold red]error:[/] {result.error}; {result.not_sent:,} records not sent. "
                "Sending the file again is safe: events already sent count once.",
                highlight=False,
            )
    if result.refused or result.not_sent:
        raise typer.Exit(code=1)


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
    parsed_period(period)
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
            # A phase's charge (the plan changes inside the period) says which plan and when.
            phase = f" ({charge['plan']} from {charge['from']})" if "plan" in charge else ""
            table.add_row(
                f"  {charge['description']}{phase}",
                charge["quantity"],
                f"{charge['events']:,}",
                charge["amount"],
            )
    _unpriced_rows(table, document)
    table.add_section()
    table.add_row("usage charges", "", "", document["usage_subtotal"])
    preview = document["invoice_preview"]
    for line in preview["lines"]:
        if line["kind"] != "usage":
            table.add_row(line["description"], "", "", line["amount"])
    table.add_row("subtotal", "", "", preview["subtotal"])
    table.add_row("tax", "", "", preview["tax"])
    table.add_row("[bold]invoice if issued now[/]", "", "", f"[bold]{preview['total']}[/]")
    _credit_rows(table, document)
    return table


def _unpriced_rows(table: Table, document: dict[str, Any]) -> None:
    """Usage no charge of the plan took (none: nothing shown): rated, on no invoice line."""
    if not document.get("unpriced"):
        return
    table.add_section()
    table.add_row("[bold]unpriced (not on the invoice)[/]", "", "", "")
    for view in document["unpriced"]:
        unit = f" {view['unit']}" if view["unit"] else ""
        why = "no charge" if view["reason"] == "no_charge" else "no filter matched"
        phase = f", {view['plan']} from {view['from']}" if "plan" in view else ""
        table.add_row(
            f"  {view['description']} ({why}{phase})",
            f"{view['quantity']}{unit}",
            f"{view['events']:,}",
            "",
        )
        for value in view["values"]:
            # Values come from producers' events: printed as text, never as markup.
            shown = escape(value["value"]) if value["value"] is not None else "(none)"
            table.add_row(
                f"    {escape(view['dimension'])}={shown}", "", f"{value['events']:,}", ""
            )
        if view["other_events"]:
            table.add_row(
                f"    {escape(view['dimension'])}: other values",
                "",
                f"{view['other_events']:,}",
                "",
            )


def _credit_rows(table: Table, document: dict[str, Any]) -> None:
    """The account's prepaid grants (none: nothing shown): what each has left after the
    invoices issued, what this period draws from it, and what is then left to pay."""
    if not document.get("credits"):
        return
    table.add_section()
    for grant in document["credits"]:
        until = f", until {grant['expires']}" if grant["expires"] else ""
        table.add_row(
            f"credit {grant['id']} ({grant['remaining']} left{until})",
            "",
            "",
            f"-{grant['this_period']}",
        )
    preview = document["invoice_preview"]
    table.add_row("paid with prepaid credits", "", "", f"-{preview['credits_applied']}")
    table.add_row("[bold]amount due[/]", "", "", f"[bold]{preview['amount_due']}[/]")


clock_app = typer.Typer(
    help="The local runtime's test clock (`billing local --clock T`).", no_args_is_help=True
)


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
accounts_app = typer.Typer(help="The customer accounts.", no_args_is_help=True)
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


@accounts_app.command("change-plan")
def accounts_change_plan(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="the account's id")],
    plan: Annotated[str, typer.Option("--plan", help="the plan in force from DATE on")],
    on: Annotated[str, typer.Option("--on", help="local date (YYYY-MM-DD) it takes effect")],
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change an account's plan from a future local midnight on (validated and stored like
    `billing accounts push` with the change added to the account's changes)."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        operations.amend_account(
            deployment, account, "changes", lambda _: {"effective": on, "plan": plan}, "change-plan"
        )
    except (CatalogError, operations.OperationError) as error:
        raise fail(str(error)) from None
    say(
        {"stack": deployment.stack, "account": account, "plan": plan, "effective": on},
        f"{account} moves to plan {plan} on {on} (local midnight) in {deployment.stack}",
        as_json,
    )


def _pushed(
    push: Callable[[Deployment, Path], Pushed], deployment: Deployment, file: Path
) -> Pushed:
    try:
        return push(deployment, file)
    except (CatalogError, operations.OperationError) as error:
        raise fail(str(error)) from None
