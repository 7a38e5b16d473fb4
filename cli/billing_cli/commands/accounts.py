"""`billing accounts list` and `billing accounts show`: the stored accounts, read through the
operator API (billing_cli.operator_client), as any operator's tool would read them.
`billing accounts push` (a file) stays in billing_cli.commands.deployed."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from billing_cli.commands.common import (
    EndpointOption,
    JsonOption,
    RegionOption,
    StackOption,
    Target,
    console,
    fail,
)
from billing_cli.commands.deployed import accounts_app
from billing_cli.operator_client import OperatorApiError, all_accounts, one_account, operator_api


@accounts_app.command("list")
def accounts_list(
    ctx: typer.Context,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every stored account: id, name, plan, time zone, start and end."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        accounts = all_accounts(operator_api(deployment))
    except OperatorApiError as error:
        raise fail(f"cannot list the accounts: {error}") from None
    if as_json:
        console.print_json(json.dumps({"accounts": accounts}))
        return
    table = Table(title=f"{len(accounts)} accounts in {deployment.stack}", title_justify="left")
    for column in _COLUMNS:
        table.add_column(column)
    for account in accounts:
        table.add_row(*(_cell(account.get(column)) for column in _COLUMNS))
    console.print(table)


_COLUMNS = ("id", "name", "plan", "timezone", "start", "end")


def _cell(value: Any) -> str:
    # Names come from the accounts file: shown as text, never as markup.
    return "" if value is None else escape(str(value))


@accounts_app.command("show")
def accounts_show(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="the account's id")],
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """One account as stored, with its version (the ETag a write through the API names)."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        document, version = one_account(operator_api(deployment), account)
    except OperatorApiError as error:
        raise fail(str(error)) from None
    if as_json:
        console.print_json(json.dumps({"account": document, "version": version}))
        return
    console.print_json(json.dumps(document))
    console.print(f"version: {version}", highlight=False)
